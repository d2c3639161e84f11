//! Deterministic "render-like" f32 rows (smooth gradients, a soft light, low noise), shared
//! by `benches/core.rs` and `examples/bench_driver.rs` (included by `#[path]`).

/// A 32-bit xorshift generator (Marsaglia): deterministic, no dependency.
pub struct XorShift32(u32);

impl XorShift32 {
    pub fn new(seed: u32) -> Self {
        XorShift32(seed | 1) // never zero
    }
    /// Uniform in [-0.5, 0.5).
    pub fn next_centered(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }
}

/// Rows `first_row .. first_row + rows` of a `width × height` f32 image that looks like a
/// rendered frame: smooth sin/cos gradients, a soft light falloff and low-amplitude noise.
/// Every row depends only on its own index, so any band of rows is reproducible alone.
pub fn render_like_rows(width: usize, height: usize, first_row: usize, rows: usize) -> Vec<f32> {
    use std::f32::consts::TAU;
    let (w, h) = (width as f32, height as f32);
    // The terms are separable in x and y, so precompute them per column.
    let cols: Vec<[f32; 5]> = (0..width)
        .map(|x| {
            let u = x as f32 / w;
            let du = u - 0.35;
            [
                (TAU * 1.5 * u + 0.7).sin(),
                (TAU * 0.6 * u).cos(),
                (TAU * 0.6 * u).sin(),
                (-du * du / 0.08).exp(),
                u,
            ]
        })
        .collect();
    let mut out = Vec::with_capacity(width * rows);
    for y in first_row..first_row + rows {
        let v = y as f32 / h;
        let dv = v - 0.4;
        let cy = (TAU * 1.1 * v).cos();
        let (s2, c2) = (TAU * 0.9 * v).sin_cos();
        let light_y = (-dv * dv / 0.08).exp();
        let mut rng = XorShift32::new((y as u32).wrapping_mul(0x9E37_79B9) ^ 0x85EB_CA6B);
        out.extend(cols.iter().map(|&[sx, cx, sxx, light_x, u]| {
            // cos(a + b) = cos a cos b − sin a sin b: a diagonal gradient.
            let diagonal = cx * c2 - sxx * s2;
            let base = 0.5 + 0.25 * sx * cy + 0.15 * diagonal + 0.1 * u;
            let light = 0.8 * light_x * light_y;
            base + light + 0.004 * rng.next_centered()
        }));
    }
    out
}
