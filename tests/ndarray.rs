//! The `ndarray` feature: chunks as 2-D views, regions and channels as 2-D arrays, and
//! channels built from 2-D views of any layout. Run with `--features ndarray`.
#![cfg(feature = "ndarray")]

use compressed_image::ndarray::{Array2, s};
use compressed_image::{Channel, Error, Image, Region, Settings};

const W: usize = 9;
const H: usize = 7;

/// `[y, x]` → `10 y + x`.
fn grid() -> Array2<i32> {
    Array2::from_shape_fn((H, W), |(y, x)| (10 * y + x) as i32)
}

/// Three rows per chunk.
fn settings() -> Settings {
    Settings::default().chunk_size(W * 4 * 3)
}

#[test]
fn a_channel_from_an_array_round_trips_as_an_array() {
    let c = Channel::from_array(grid().view(), settings()).unwrap();
    assert_eq!((c.width(), c.height(), c.num_chunks()), (W, H, 3));
    assert_eq!(c.to_array().unwrap(), grid());
    // A transposed (column-major) view is stored in its logical order.
    let transposed = grid().t().to_owned();
    let c = Channel::from_array(grid().t(), settings().chunk_size(H * 4)).unwrap();
    assert_eq!((c.width(), c.height()), (H, W));
    assert_eq!(c.to_array().unwrap(), transposed);
    // A strided view too.
    let every_other = grid().slice(s![.., ..;2]).to_owned();
    let c = Channel::from_array(grid().slice(s![.., ..;2]), Settings::default()).unwrap();
    assert_eq!(c.to_array().unwrap(), every_other);
}

#[test]
fn a_channel_file_from_an_array_reopens_with_the_same_elements() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("array.cimg");
    drop(Channel::create_from_array(&path, grid().view(), settings()).unwrap());
    let c = Channel::<i32>::open_read_only(&path).unwrap();
    assert_eq!(c.to_array().unwrap(), grid());
}

#[test]
fn chunk_views_are_indexed_by_row_and_column() {
    let c = Channel::from_array(grid().view(), settings()).unwrap();
    c.for_each_chunk(|chunk| {
        let view = chunk.view();
        let first = 3 * chunk.index();
        assert_eq!(view.ncols(), W);
        assert_eq!(view, grid().slice(s![first..first + view.nrows(), ..]));
        Ok(())
    })
    .unwrap();
    c.update_chunks(|chunk| {
        let mut view = chunk.view_mut();
        view.column_mut(0).fill(-1);
        Ok(())
    })
    .unwrap();
    let mut want = grid();
    want.column_mut(0).fill(-1);
    assert_eq!(c.to_array().unwrap(), want);
}

#[test]
fn regions_read_and_write_as_arrays() {
    let c = Channel::from_array(grid().view(), settings()).unwrap();
    let region = c.read_region_array(Region::new(2, 1, 4, 5)).unwrap();
    assert_eq!(region, grid().slice(s![1..6, 2..6]));

    let patch = Array2::from_shape_fn((3, 2), |(y, x)| -((y * 2 + x) as i32));
    c.write_region_array(5, 4, patch.view()).unwrap();
    let mut want = grid();
    want.slice_mut(s![4..7, 5..7]).assign(&patch);
    assert_eq!(c.to_array().unwrap(), want);
    // A non-contiguous patch is written in its logical order.
    c.write_region_array(0, 0, patch.t()).unwrap();
    want.slice_mut(s![0..2, 0..3]).assign(&patch.t());
    assert_eq!(c.to_array().unwrap(), want);
    assert!(matches!(
        c.write_region_array(8, 0, patch.view()),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn an_image_takes_arrays_of_its_own_shape_only() {
    let image = Image::<i32>::new(W, H).unwrap();
    let c = image
        .add_channel_array(grid().view(), Some("g"), settings())
        .unwrap();
    assert_eq!(c.to_array().unwrap(), grid());
    assert!(matches!(
        image.add_channel_array(grid().t(), None, settings()),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(image.num_channels(), 1);
}
