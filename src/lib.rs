//! compressed-image
mod blosc;
mod codec;
mod error;
mod format;
mod geometry;
mod sample;
pub use codec::{Codec, Settings};
pub use error::{Error, Result};
pub use geometry::Geometry;
pub use sample::{Dtype, Sample};
