"""Code that `mypy --strict` must reject against the stubs (test_typing.py checks that it
does): proof that the stubs, not an implicit `Any`, are what is checked."""

from compressed_image import Image


def wrong(path: str) -> str:
    with Image.open(path) as image:
        return image.num_channels


def no_subimage(path: str) -> None:
    Image.read("float32", path)  # 1.0.1's read has no default subimage


def twelve_bits(image: Image, path: str) -> None:
    image.write(path, depth=12)  # 8 or 16


def positional_names(image: Image, path: str) -> None:
    image.write(path, ["R", "G", "B"])  # the channels are keyword-only
