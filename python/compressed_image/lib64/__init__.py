"""Not a module of compressed-image-rs: the original compressed-image 1.0.1 loads its
extension from here, so reaching this file means the original's ``__init__.py`` was
installed over this distribution's (see ``compressed_image._conflict``)."""

from .._conflict import raise_conflict

raise_conflict()
