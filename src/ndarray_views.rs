//! `ndarray` interop (feature `ndarray`): chunks as 2-D views, regions and whole channels
//! as 2-D arrays, and channels built from 2-D views. Arrays are indexed `[row, column]`,
//! i.e. `[y, x]`, with the shape `(height, width)`.

use std::path::Path;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::channel::Channel;
use crate::chunks::{ChunkMut, ChunkRef};
use crate::error::{Argument, Error, Result};
use crate::image::Image;
use crate::region::Region;
use crate::sample::Sample;
use crate::settings::Settings;

/// `data`, `width` elements per row, as a `(rows, width)` view.
fn rows_view<T>(data: &[T], width: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((data.len() / width, width), data)
        .expect("a chunk holds whole rows of `width` elements")
}

/// The elements of `view` in row-major order, borrowed when it is already laid out so.
fn row_major<'a, T: Sample>(view: &'a ArrayView2<'_, T>, owned: &'a mut Vec<T>) -> &'a [T] {
    match view.as_slice() {
        Some(slice) => slice,
        None => {
            owned.extend(view.iter().copied());
            owned
        }
    }
}

/// `data` (`height × width` elements) as an array.
fn to_array<T>(data: Vec<T>, width: usize, height: usize) -> Result<Array2<T>> {
    Array2::from_shape_vec((height, width), data).map_err(|e| {
        Error::invalid(
            Argument::BufferLength,
            e,
            format!("{height} x {width} elements"),
        )
    })
}

impl<T> ChunkRef<'_, T> {
    /// The chunk as a `(rows, width)` view.
    pub fn view(&self) -> ArrayView2<'_, T> {
        rows_view(self.data(), self.width())
    }
}

impl<T> ChunkMut<'_, T> {
    /// The chunk as a read-only `(rows, width)` view.
    pub fn view(&self) -> ArrayView2<'_, T> {
        rows_view(self.data(), self.width())
    }

    /// The chunk as a `(rows, width)` view for writing; the chunk will be written back.
    pub fn view_mut(&mut self) -> ArrayViewMut2<'_, T> {
        let width = self.width();
        let data = self.data_mut();
        ArrayViewMut2::from_shape((data.len() / width, width), data)
            .expect("a chunk holds whole rows of `width` elements")
    }
}

impl<T: Sample> Channel<T> {
    /// Compress a 2-D array (`height × width`, any memory layout) into a new anonymous
    /// channel; see [`new`](Self::new).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_array(array: ArrayView2<'_, T>, settings: Settings) -> Result<Channel<T>> {
        let (height, width) = array.dim();
        let mut owned = Vec::new();
        Channel::new(row_major(&array, &mut owned), width, height, settings)
    }

    /// Compress a 2-D array into a new channel file at `path`; see [`create`](Self::create).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_from_array(
        path: impl AsRef<Path>,
        array: ArrayView2<'_, T>,
        settings: Settings,
    ) -> Result<Channel<T>> {
        let (height, width) = array.dim();
        let mut owned = Vec::new();
        Channel::create(path, row_major(&array, &mut owned), width, height, settings)
    }

    /// The whole channel as a `(height, width)` array.
    ///
    /// # Errors
    /// As [`get_decompressed`](Self::get_decompressed).
    pub fn to_array(&self) -> Result<Array2<T>> {
        to_array(self.get_decompressed()?, self.width(), self.height())
    }

    /// `region` as a `(height, width)` array.
    ///
    /// # Errors
    /// As [`read_region`](Self::read_region).
    pub fn read_region_array(&self, region: Region) -> Result<Array2<T>> {
        to_array(self.read_region_vec(region)?, region.width, region.height)
    }

    /// Overwrite the region at column `x`, row `y` with `array` (its shape gives the
    /// region's height and width), in one commit.
    ///
    /// # Errors
    /// As [`write_region`](Self::write_region).
    pub fn write_region_array(&self, x: usize, y: usize, array: ArrayView2<'_, T>) -> Result {
        let (height, width) = array.dim();
        let mut owned = Vec::new();
        let region = Region::new(x, y, width, height);
        self.write_region(region, row_major(&array, &mut owned))
    }
}

impl<T: Sample> Image<T> {
    /// Compress a 2-D array (`height × width` of the image) as a new last channel; see
    /// [`add_channel`](Self::add_channel).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the array's shape is not the image's; as
    /// [`add_channel`](Self::add_channel).
    pub fn add_channel_array(
        &self,
        array: ArrayView2<'_, T>,
        name: Option<&str>,
        settings: Settings,
    ) -> Result<Channel<T>> {
        let (height, width) = array.dim();
        if (width, height) != (self.width(), self.height()) {
            return Err(Error::invalid(
                Argument::DataLength,
                format!("an array of {height} x {width}"),
                format!("{} x {} (height x width)", self.height(), self.width()),
            ));
        }
        let mut owned = Vec::new();
        self.add_channel(row_major(&array, &mut owned), name, settings)
    }
}
