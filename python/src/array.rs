//! The numpy side of `Channel`: `__array__`, `ndim`, `__len__`, `__getitem__`,
//! `__setitem__` and `read_rows`. A selection reads and writes only the chunks holding its
//! rows; every decode and compression runs without the GIL.

use ci::{AnyChannel, Channel, Dtype, Region};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArray};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PySlice, PyTuple};

use crate::channel::PyChannel;
use crate::convert::{Elem, dispatch, np_dtype, with_bytes, with_slice};
use crate::errors::{IntoPyResult, to_py};
use crate::settings::Size;

/// `data` as a new 2-D `(rows, cols)` array (row-major).
pub fn array2<'py, T: Elem>(
    py: Python<'py>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, data)
        .reshape([rows, cols])?
        .into_any())
}

/// One axis of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    /// One position; the axis is dropped from the result.
    Index(usize),
    /// `len` positions `first, first + step, …` (`first` is 0 when `len` is 0).
    Range {
        first: usize,
        step: isize,
        len: usize,
    },
}

impl Axis {
    /// The axis `item` (an int or a slice) selects on an axis of `size` positions.
    fn parse(item: &Bound<'_, PyAny>, size: usize, axis: usize) -> PyResult<Axis> {
        if let Ok(slice) = item.cast::<PySlice>() {
            let s = slice.indices(size as isize)?;
            let first = if s.slicelength == 0 {
                0
            } else {
                s.start as usize
            };
            return Ok(Axis::Range {
                first,
                step: s.step,
                len: s.slicelength,
            });
        }
        if item.is_instance_of::<PyBool>() {
            return Err(invalid_index());
        }
        let index: isize = item.extract().map_err(|_| invalid_index())?;
        let position = if index < 0 {
            index + size as isize
        } else {
            index
        };
        if !(0..size as isize).contains(&position) {
            return Err(PyIndexError::new_err(format!(
                "index {index} is out of bounds for axis {axis} with size {size}"
            )));
        }
        Ok(Axis::Index(position as usize))
    }

    /// Number of positions.
    fn len(self) -> usize {
        match self {
            Axis::Index(_) => 1,
            Axis::Range { len, .. } => len,
        }
    }

    /// The positions, in selection order.
    fn positions(self) -> impl Iterator<Item = usize> {
        let (first, step, len) = match self {
            Axis::Index(i) => (i, 1, 1),
            Axis::Range { first, step, len } => (first, step, len),
        };
        (0..len).map(move |k| first.wrapping_add_signed(step * k as isize))
    }

    /// `[lo, hi)` holding every position (empty for an empty range).
    fn span(self) -> (usize, usize) {
        let mut positions = self.positions();
        let Some(first) = positions.next() else {
            return (0, 0);
        };
        let last = positions.last().unwrap_or(first);
        (first.min(last), first.max(last) + 1)
    }

    /// Whether the positions are consecutive and increasing (a plain region).
    fn is_contiguous(self) -> bool {
        match self {
            Axis::Index(_) => true,
            Axis::Range { step, len, .. } => step == 1 || len <= 1,
        }
    }

    /// Whether a step skips positions (a result would hold unused elements).
    fn skips(self) -> bool {
        matches!(self, Axis::Range { step, len, .. } if step.unsigned_abs() > 1 && len > 1)
    }

    /// The numpy index of these positions within a block starting at position `lo`: an int
    /// for [`Axis::Index`] (dropping the axis), else a slice.
    fn within<'py>(self, py: Python<'py>, lo: usize) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Axis::Index(i) => Ok((i - lo).into_pyobject(py)?.into_any()),
            Axis::Range { first, step, .. } => slice(py, (first - lo) as isize, None, step),
        }
    }

    /// The numpy index of these positions in the whole axis, always a slice (the axis is
    /// kept).
    fn as_slice<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Axis::Index(i) => slice(py, i as isize, Some(i as isize + 1), 1),
            Axis::Range { first, step, len } => {
                // One step past the last position; below 0 (a negative step down to 0)
                // only `None` says it. A step so large that this overflows selects one
                // position, which `None` selects too.
                let end = step
                    .checked_mul(len as isize)
                    .and_then(|d| (first as isize).checked_add(d))
                    .filter(|end| *end >= 0);
                slice(py, first as isize, end, step)
            }
        }
    }
}

/// `slice(start, stop, step)`; `None` stops at the end the step runs to.
fn slice<'py>(
    py: Python<'py>,
    start: isize,
    stop: Option<isize>,
    step: isize,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("builtins")?
        .getattr("slice")?
        .call1((start, stop, step))
}

fn invalid_index() -> PyErr {
    PyIndexError::new_err(
        "only integers, slices (`:`) and ellipsis (`...`) are valid channel indices",
    )
}

/// The row and column axes `key` selects in a `height × width` channel: `c[i]`, `c[a:b]`,
/// `c[rows, cols]`, with at most one `...`.
fn parse_key(key: &Bound<'_, PyAny>, height: usize, width: usize) -> PyResult<(Axis, Axis)> {
    let py = key.py();
    let items: Vec<Bound<'_, PyAny>> = match key.cast::<PyTuple>() {
        Ok(tuple) => tuple.iter().collect(),
        Err(_) => vec![key.clone()],
    };
    let ellipsis = py.Ellipsis();
    let is_ellipsis = |item: &Bound<'_, PyAny>| item.is(&ellipsis);
    if items.iter().filter(|i| is_ellipsis(i)).count() > 1 {
        return Err(PyIndexError::new_err(
            "an index can only have a single ellipsis ('...')",
        ));
    }
    let explicit: Vec<&Bound<'_, PyAny>> = items.iter().filter(|i| !is_ellipsis(i)).collect();
    if explicit.len() > 2 {
        return Err(PyIndexError::new_err(format!(
            "too many indices for a channel: it is 2-dimensional, but {} were indexed",
            explicit.len()
        )));
    }
    // With an ellipsis first (`c[..., x]`), a single index is the column's.
    let columns_only = explicit.len() == 1 && items.first().is_some_and(is_ellipsis);
    let full = PySlice::full(py).into_any();
    let (row_key, col_key) = match (explicit.as_slice(), columns_only) {
        ([], _) => (&full, &full),
        ([only], true) => (&full, *only),
        ([only], false) => (*only, &full),
        ([rows, cols], _) => (*rows, *cols),
        _ => unreachable!("at most two explicit indices"),
    };
    Ok((
        Axis::parse(row_key, height, 0)?,
        Axis::parse(col_key, width, 1)?,
    ))
}

/// The shape of a selection: the dropped (single-index) axes left out.
fn selection_shape(rows: Axis, cols: Axis) -> Vec<usize> {
    [rows, cols]
        .into_iter()
        .filter(|a| !matches!(a, Axis::Index(_)))
        .map(Axis::len)
        .collect()
}

/// Read the selected elements into a new array of the selection's shape. Rows are read one
/// at a time when a step puts every selected row in its own chunk, so the chunks between
/// them are not decoded; otherwise the rows spanning the selection are read at once.
fn read_selection<'py, T: Elem>(
    py: Python<'py>,
    any: AnyChannel,
    rows: Axis,
    cols: Axis,
) -> PyResult<Bound<'py, PyAny>> {
    let ch = Channel::<T>::try_from_any(any).py_err()?;
    let (x0, x1) = cols.span();
    let width = x1 - x0;
    let one_row_per_chunk = matches!(rows, Axis::Range { step, .. }
        if step.unsigned_abs() >= ch.geometry().rows_per_chunk());
    let (block, row_index) = if one_row_per_chunk {
        let positions: Vec<usize> = rows.positions().collect();
        let data = py
            .detach(|| -> ci::Result<Vec<T>> {
                let mut out = bytemuck::zeroed_vec(positions.len() * width);
                for (row, dst) in positions.iter().zip(out.chunks_exact_mut(width)) {
                    ch.read_region(Region::new(x0, *row, width, 1), dst)?;
                }
                Ok(out)
            })
            .py_err()?;
        let block = array2(py, data, positions.len(), width)?;
        (block, PySlice::full(py).into_any())
    } else {
        let (y0, y1) = rows.span();
        let region = Region::new(x0, y0, width, y1 - y0);
        let data = py.detach(|| ch.read_region_vec(region)).py_err()?;
        (array2(py, data, y1 - y0, width)?, rows.within(py, y0)?)
    };
    let selected = block.get_item((row_index, cols.within(py, x0)?))?;
    if rows.skips() || cols.skips() {
        // A strided view would keep the whole block alive.
        return selected.call_method0("copy");
    }
    Ok(selected)
}

/// `value` as an array of `dtype` broadcast to `shape`. Python numbers, lists and tuples
/// follow `Channel.full`'s `fill_value`: integers must fit an integer channel exactly,
/// floats go only to float channels (rounded); numpy arrays and scalars, and other array
/// likes (a Channel), must convert without loss (`np.can_cast(..., "safe")`). TypeError or
/// ValueError otherwise, before anything is written.
fn assigned_values<'py>(
    value: &Bound<'py, PyAny>,
    dtype: Dtype,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    let np = py.import("numpy")?;
    let target = np_dtype(py, dtype)?;
    // Python numbers and sequences follow `fill_value`'s rules; numpy arrays and scalars,
    // and anything else numpy converts (objects with `__array__`), must cast safely.
    let is_numpy = value.is_instance(&np.getattr("ndarray")?)?
        || value.is_instance(&np.getattr("generic")?)?;
    let from_python = !is_numpy
        && (value.is_instance_of::<PyInt>()
            || value.is_instance_of::<PyFloat>()
            || value.is_instance_of::<PyList>()
            || value.is_instance_of::<PyTuple>());
    let given = np.call_method1("asarray", (value,))?;
    let given_dtype = given.getattr("dtype")?;
    let kind: String = given_dtype.getattr("kind")?.extract()?;
    let integer_target = !matches!(dtype, Dtype::F16 | Dtype::F32 | Dtype::F64);
    let allowed = if !from_python {
        np.call_method1("can_cast", (&given_dtype, &target, "safe"))?
            .is_truthy()?
    } else if integer_target {
        matches!(kind.as_str(), "b" | "i" | "u")
    } else {
        matches!(kind.as_str(), "b" | "i" | "u" | "f")
    };
    if !allowed {
        return Err(PyTypeError::new_err(format!(
            "cannot assign {given_dtype} values to a {dtype} channel without loss; convert them first (e.g. with .astype)"
        )));
    }
    let converted = given.call_method1("astype", (&target,))?;
    if from_python && integer_target {
        let back = converted.call_method1("astype", (&given_dtype,))?;
        if !np
            .call_method1("array_equal", (&back, &given))?
            .is_truthy()?
        {
            return Err(PyValueError::new_err(format!(
                "values out of the range of the channel's dtype {dtype}"
            )));
        }
    }
    np.call_method1("broadcast_to", (converted, PyTuple::new(py, shape)?))
}

/// Write `values` (2-D: selected rows × selected columns, of `T`) to the selected elements
/// in one commit, reading, changing and storing exactly the chunks holding selected rows.
/// The batch holds the file's writer from the first read to the commit, so no other write
/// comes between; decoding and compression run without the GIL.
fn write_selection<T: Elem>(
    py: Python<'_>,
    any: AnyChannel,
    rows: Axis,
    cols: Axis,
    values: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let ch = Channel::<T>::try_from_any(any).py_err()?;
    let g = ch.geometry();
    let columns = cols.as_slice(py)?;
    let positions: Vec<usize> = rows.positions().collect();
    let mut batch = ch.batch().py_err()?;
    let mut k = 0;
    while k < positions.len() {
        let index = positions[k] / g.rows_per_chunk();
        let start_row = g.chunk_start_row(index);
        let end = positions[k..]
            .iter()
            .position(|p| p / g.rows_per_chunk() != index)
            .map_or(positions.len(), |n| k + n);
        let within: Vec<isize> = positions[k..end]
            .iter()
            .map(|p| (p - start_row) as isize)
            .collect();
        let data = py.detach(|| ch.get_chunk_vec(index)).py_err()?;
        let chunk = array2(py, data, g.chunk_rows(index), g.width())?;
        let part = values.get_item(slice(py, k as isize, Some(end as isize), 1)?)?;
        chunk.set_item((PyArray1::from_vec(py, within), &columns), part)?;
        let chunk = chunk.cast_into::<PyUntypedArray>()?;
        let stored =
            with_slice::<T, _>(&chunk, |s| py.detach(|| ch.compress_chunk(index, s)))?.py_err()?;
        batch.set_stored_chunk(index, &stored).py_err()?;
        k = end;
    }
    batch.commit().py_err()
}

#[pymethods]
impl PyChannel {
    /// The whole channel as a new 2-D `(height, width)` array (numpy's array protocol:
    /// `np.asarray(channel)`), cast to `dtype` if given. `copy=False` is refused with
    /// ValueError: the data is always decompressed into a new array.
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if copy == Some(false) {
            return Err(PyValueError::new_err(
                "a Channel is decompressed into a new array: it cannot be viewed without a copy",
            ));
        }
        let any = self.any()?;
        let array = dispatch!(any.dtype(), T => crate::typed::decompressed::<T>(py, any))?;
        let array = array.into_bound(py);
        match dtype {
            Some(d) if !d.is_none() => array.call_method1("astype", (d,)),
            _ => Ok(array),
        }
    }

    /// Number of dimensions: 2 (rows, columns).
    #[getter]
    fn ndim(&self) -> PyResult<usize> {
        self.any()?;
        Ok(2)
    }

    /// Number of rows (the height), as `len()` of a 2-D array.
    fn __len__(&self) -> PyResult<usize> {
        Ok(self.any()?.height())
    }

    /// Elements by numpy basic indexing: `c[y]` (one row), `c[y0:y1]`, `c[y0:y1, x0:x1]`,
    /// negative indices, steps, `...`. Only the chunks holding the selected rows are
    /// decoded; the result is a new array.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let any = self.any()?;
        let (rows, cols) = parse_key(key, any.height(), any.width())?;
        if rows.len() == 0 || cols.len() == 0 {
            let shape = PyTuple::new(py, selection_shape(rows, cols))?;
            return py
                .import("numpy")?
                .call_method1("empty", (shape, np_dtype(py, any.dtype())?));
        }
        dispatch!(any.dtype(), T => read_selection::<T>(py, any, rows, cols))
    }

    /// Assign to the elements `key` selects (as `__getitem__`): an array of the selection's
    /// shape (or one that broadcasts to it, a scalar included) whose values the channel's
    /// dtype holds exactly. Exactly the chunks holding selected rows are read, changed
    /// and stored, in one commit. A wrong shape (ValueError) or dtype (TypeError) changes
    /// nothing.
    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let any = self.any()?;
        if !any.is_writable() {
            return Err(to_py(ci::Error::ReadOnly));
        }
        let (rows, cols) = parse_key(key, any.height(), any.width())?;
        let values = assigned_values(value, any.dtype(), &selection_shape(rows, cols))?;
        if rows.len() == 0 || cols.len() == 0 {
            return Ok(());
        }
        let np = py.import("numpy")?;
        let grid = PyTuple::new(py, [rows.len(), cols.len()])?;
        let values = np.call_method1("reshape", (values, grid))?;
        if rows.is_contiguous() && cols.is_contiguous() {
            let (x0, x1) = cols.span();
            let (y0, y1) = rows.span();
            let region = Region::new(x0, y0, x1 - x0, y1 - y0);
            let data = np
                .call_method1("ascontiguousarray", (values,))?
                .cast_into::<PyUntypedArray>()?;
            return with_bytes(&data, any.dtype(), |bytes| {
                py.detach(|| any.write_region_bytes(region, bytes))
            })?
            .py_err();
        }
        dispatch!(any.dtype(), T => write_selection::<T>(py, any, rows, cols, &values))
    }

    /// Rows `y0 .. y1` as a new 2-D `(y1 - y0, width)` array, decoding only the chunks
    /// (and c-blosc2 blocks) that hold them. ValueError for rows outside the channel.
    #[pyo3(text_signature = "($self, y0, y1)")]
    fn read_rows<'py>(&self, py: Python<'py>, y0: Size, y1: Size) -> PyResult<Bound<'py, PyAny>> {
        let any = self.any()?;
        if y0.0 > y1.0 || y1.0 > any.height() {
            return Err(PyValueError::new_err(format!(
                "rows {} .. {} are not within the channel's {} rows",
                y0.0,
                y1.0,
                any.height()
            )));
        }
        let rows = Axis::Range {
            first: y0.0,
            step: 1,
            len: y1.0 - y0.0,
        };
        if rows.len() == 0 {
            return self.__getitem__(py, &PySlice::new(py, 0, 0, 1).into_any());
        }
        let cols = Axis::Range {
            first: 0,
            step: 1,
            len: any.width(),
        };
        dispatch!(any.dtype(), T => read_selection::<T>(py, any, rows, cols))
    }
}
