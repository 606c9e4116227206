//! Turning the decode stage's RGB picture into the model's input tensor. The
//! buffer is kept and refilled, so steady state allocates nothing.

use crate::manifest::{InputSpec, Layout, TensorType};
use xueliang_core::ModelInput;

pub enum InputTensor {
    U8 { shape: [usize; 4], data: Vec<u8> },
    F32 { shape: [usize; 4], data: Vec<f32> },
}

impl InputTensor {
    pub fn new(spec: &InputSpec) -> Self {
        let (w, h) = (spec.geometry.width as usize, spec.geometry.height as usize);
        let shape = match spec.layout {
            Layout::Nhwc => [1, h, w, 3],
            Layout::Nchw => [1, 3, h, w],
        };
        match spec.dtype {
            TensorType::Uint8 => InputTensor::U8 {
                shape,
                data: vec![0; w * h * 3],
            },
            TensorType::Float32 => InputTensor::F32 {
                shape,
                data: vec![0.0; w * h * 3],
            },
        }
    }

    /// Fills the tensor from a packed RGB24 picture of the model's input size.
    pub fn fill(&mut self, spec: &InputSpec, input: &ModelInput) {
        let plane = input.width as usize * input.height as usize;
        debug_assert_eq!(input.rgb.len(), plane * 3);
        match (self, spec.layout) {
            (InputTensor::U8 { data, .. }, Layout::Nhwc) => data.copy_from_slice(&input.rgb),
            (InputTensor::U8 { data, .. }, Layout::Nchw) => {
                for (i, px) in input.rgb.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        data[c * plane + i] = px[c];
                    }
                }
            }
            (InputTensor::F32 { data, .. }, layout) => {
                let mut scale = [0f32; 3];
                let mut offset = [0f32; 3];
                for c in 0..3 {
                    scale[c] = 1.0 / (255.0 * spec.std[c]);
                    offset[c] = -spec.mean[c] / spec.std[c];
                }
                match layout {
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
        let mut t = InputTensor::new(&s);
        t.fill(&s, &picture());
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
        let mut t = InputTensor::new(&s);
        t.fill(&s, &picture());
        let InputTensor::U8 { shape, data } = t else {
            panic!()
        };
        assert_eq!(shape, [1, 1, 2, 3]);
        assert_eq!(data, picture().rgb);
    }
}
