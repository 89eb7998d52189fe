//! The small video classifier shared by `examples/train.rs` and `examples/inference.rs`: three 3-D convolutions
//! over `[B, C, T, H, W]` and a linear layer.

use tch::nn::{self, Module};
use tch::Tensor;

/// Frames per clip, the stride between them, and the frame size the model sees.
pub const FRAMES: usize = 8;
pub const STRIDE: usize = 2;
pub const SIZE: u32 = 32;
/// Normalisation of the input (per channel, after scaling to 0..1).
pub const MEAN: [f32; 3] = [0.45; 3];
pub const STD: [f32; 3] = [0.25; 3];

/// `[B, T, 3, H, W]` float frames (normalised) to `[B, classes]` logits.
pub fn classifier(vs: &nn::Path, classes: i64) -> impl Module {
    let conv = |c_in, c_out, name: &str| {
        nn::conv3d(
            vs / name,
            c_in,
            c_out,
            3,
            nn::ConvConfig {
                padding: 1,
                ..Default::default()
            },
        )
    };
    let (c1, c2, c3) = (conv(3, 16, "c1"), conv(16, 32, "c2"), conv(32, 32, "c3"));
    let fc = nn::linear(vs / "fc", 32, classes, Default::default());
    nn::func(move |x: &Tensor| {
        let x = x.permute([0, 2, 1, 3, 4]); // [B, C, T, H, W]
        let x = x
            .apply(&c1)
            .relu()
            .max_pool3d([1, 2, 2], [1, 2, 2], [0, 0, 0], [1, 1, 1], false);
        let x = x
            .apply(&c2)
            .relu()
            .max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false);
        let x = x
            .apply(&c3)
            .relu()
            .adaptive_avg_pool3d([1, 1, 1])
            .flatten(1, -1);
        x.apply(&fc)
    })
}
