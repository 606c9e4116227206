//! Turning the decode stage's RGB picture into the model's input tensor. The
//! buffer is kept and refilled, so steady state allocates nothing.

use crate::manifest::{InputSpec, Layout, TensorType};
use xueliang_core::ModelInput;

/// The input tensor for up to `capacity` pictures; `shape[0]` is the number
/// filled by the last [`InputTensor::fill`], and only those rows are run.
pub enum InputTensor {
    U8 { shape: [usize; 4], data: Vec<u8> },
    F32 { shape: [usize; 4], data: Vec<f32> },
}

impl InputTensor {
    pub fn new(spec: &InputSpec, capacity: usize) -> Self {
        let (w, h) = (spec.geometry.width as usize, spec.geometry.height as usize);
        let shape = match spec.layout {
            Layout::Nhwc => [1, h, w, 3],
            Layout::Nchw => [1, 3, h, w],
        };
        let len = w * h * 3 * capacity.max(1);
        match spec.dtype {
            TensorType::Uint8 => InputTensor::U8 {
                shape,
                data: vec![0; len],
            },
            TensorType::Float32 => InputTensor::F32 {
                shape,
                data: vec![0.0; len],
            },
        }
    }

    /// The pictures it holds at most.
    pub fn capacity(&self) -> usize {
        let (shape, len) = match self {
            InputTensor::U8 { shape, data } => (shape, data.len()),
            InputTensor::F32 { shape, data } => (shape, data.len()),
        };
        len / shape[1..].iter().product::<usize>()
    }

    /// Fills one row per picture (packed RGB24 of the model's input size),
    /// at most [`InputTensor::capacity`] of them.
    pub fn fill(&mut self, spec: &InputSpec, inputs: &[&ModelInput]) {
        let n = inputs.len().min(self.capacity());
        match self {
            InputTensor::U8 { shape, data } => {
                let row = shape[1..].iter().product::<usize>();
                shape[0] = n;
                for (input, out) in inputs.iter().zip(data.chunks_exact_mut(row)) {
                    fill_u8(spec.layout, input, out);
                }
            }
            InputTensor::F32 { shape, data } => {
                let row = shape[1..].iter().product::<usize>();
                shape[0] = n;
                for (input, out) in inputs.iter().zip(data.chunks_exact_mut(row)) {
                    fill_f32(spec, input, out);
                }
            }
        }
    }
}

fn fill_u8(layout: Layout, input: &ModelInput, data: &mut [u8]) {
    let plane = input.width as usize * input.height as usize;
    debug_assert_eq!(input.rgb.len(), plane * 3);
    match layout {
        Layout::Nhwc => data.copy_from_slice(&input.rgb),
        Layout::Nchw => {
            for (i, px) in input.rgb.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    data[c * plane + i] = px[c];
                }
            }
        }
    }
}

fn fill_f32(spec: &InputSpec, input: &ModelInput, data: &mut [f32]) {
    let plane = input.width as usize * input.height as usize;
    debug_assert_eq!(input.rgb.len(), plane * 3);
    let mut scale = [0f32; 3];
    let mut offset = [0f32; 3];
    for c in 0..3 {
        scale[c] = 1.0 / (255.0 * spec.std[c]);
        offset[c] = -spec.mean[c] / spec.std[c];
    }
    match spec.layout {
        Layout::Nhwc => {
            for (i, v) in input.rgb.iter().enumerate() {
                let c = i % 3;
                data[i] = *v as f32 * scale[c] + offset[c];
            }
        }
        Layout::Nchw => {
            for (i, px) in input.rgb.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    data[c * plane + i] = px[c] as f32 * scale[c] + offset[c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xueliang_core::frame::Placement;
    use xueliang_core::{InputGeometry, ResizeMode};

    fn spec(layout: Layout, dtype: TensorType) -> InputSpec {
        InputSpec {
            name: "x".into(),
            geometry: InputGeometry {
                width: 2,
                height: 1,
                resize: ResizeMode::Stretch,
            },
            layout,
            dtype,
            mean: [0.5, 0.0, 0.0],
            std: [0.5, 1.0, 1.0],
        }
    }

    fn picture() -> ModelInput {
        ModelInput {
            width: 2,
            height: 1,
            rgb: vec![255, 0, 51, 0, 255, 102],
            placement: Placement {
                scale_x: 1.0,
                scale_y: 1.0,
                pad_x: 0,
                pad_y: 0,
                scaled_w: 2,
                scaled_h: 1,
            },
        }
    }

    #[test]
    fn nchw_float_planes_and_normalises() {
        let s = spec(Layout::Nchw, TensorType::Float32);
        let mut t = InputTensor::new(&s, 1);
        t.fill(&s, &[&picture()]);
        let InputTensor::F32 { shape, data } = t else {
            panic!()
        };
        assert_eq!(shape, [1, 3, 1, 2]);
        // R plane: (1 - .5)/.5 = 1, (0 - .5)/.5 = -1; G plane 0, 1; B plane .2, .4
        let want = [1.0, -1.0, 0.0, 1.0, 0.2, 0.4];
        for (a, b) in data.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{data:?}");
        }
    }

    #[test]
    fn nhwc_uint8_is_the_picture_itself() {
        let s = spec(Layout::Nhwc, TensorType::Uint8);
        let mut t = InputTensor::new(&s, 1);
        t.fill(&s, &[&picture()]);
        let InputTensor::U8 { shape, data } = t else {
            panic!()
        };
        assert_eq!(shape, [1, 1, 2, 3]);
        assert_eq!(data, picture().rgb);
    }

    #[test]
    fn a_batch_fills_one_row_per_picture_and_runs_only_those() {
        let s = spec(Layout::Nhwc, TensorType::Uint8);
        let mut t = InputTensor::new(&s, 3);
        assert_eq!(t.capacity(), 3);
        let mut second = picture();
        second.rgb.iter_mut().for_each(|v| *v = 7);
        t.fill(&s, &[&picture(), &second]);
        let InputTensor::U8 { shape, data } = &t else {
            panic!()
        };
        assert_eq!(shape, &[2, 1, 2, 3]);
        assert_eq!(&data[..6], picture().rgb.as_slice());
        assert_eq!(&data[6..12], &[7; 6]);
        // More pictures than it holds: the first `capacity` are taken.
        let four = [&picture(), &second, &second, &second];
        t.fill(&s, &four);
        let InputTensor::U8 { shape, .. } = &t else {
            panic!()
        };
        assert_eq!(shape[0], 3);
    }
}
