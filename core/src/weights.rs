//! MNISTNet weights as safetensors, with PyTorch's state_dict names, shapes and layouts, so a
//! PyTorch user can `load_state_dict(safetensors.torch.load_file(...))` unchanged.

use crate::error::{Error, Result};
use crate::model::{Layer, MnistNet};
use crate::tensor_file::{self, Entry};
use ndarray::ArrayView4;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;

/// The largest weights file we accept (the real one is 1.69 MB).
pub const MAX_BYTES: usize = 64 << 20;

/// How each compute-layout tensor is permuted into PyTorch's layout: `(view shape, axes)`.
/// conv2 `[o, ky, kx, c]` → `[o, c, ky, kx]`; fc1 inputs `(h, w, c)` → `(c, h, w)`.
fn to_torch_permutation(layer: Layer) -> Option<([usize; 4], [usize; 4])> {
    match layer {
        Layer::Conv2 => Some(([64, 3, 3, 32], [0, 3, 1, 2])),
        Layer::Fc1 => Some(([128, 7, 7, 64], [0, 3, 1, 2])),
        // conv1 has one input channel and fc2 follows a dense layer: the layouts agree.
        Layer::Conv1 | Layer::Fc2 => None,
    }
}

/// `data` (row-major over `shape`) with its axes reordered. Four fixed dimensions, not ndarray's
/// dynamic ones: iterating an `IxDyn` view costs a heap-indexed step per element, which made
/// loading fc1's 401,408 weights take ~40 ms of the page's start-up.
fn permute(data: &[f32], shape: [usize; 4], axes: [usize; 4]) -> Vec<f32> {
    let view = ArrayView4::from_shape(shape, data).expect("shape matches the tensor");
    view.permuted_axes(axes).iter().copied().collect()
}

/// A layer's weight in PyTorch's layout (flat, row-major over [`Layer::weight_shape`]).
pub fn torch_weight(net: &MnistNet, layer: Layer) -> Vec<f32> {
    let w = net.weight(layer);
    match to_torch_permutation(layer) {
        Some((shape, axes)) => permute(w, shape, axes),
        None => w.to_vec(),
    }
}

/// Sets a layer's weight from PyTorch's layout (the inverse of [`torch_weight`]).
pub fn set_torch_weight(net: &mut MnistNet, layer: Layer, torch: &[f32]) {
    let compute = compute_weight(layer, torch);
    net.weight_mut(layer).copy_from_slice(&compute);
}

/// A layer's weight in PyTorch's layout, `torch`, in the network's compute layout.
pub fn compute_weight(layer: Layer, torch: &[f32]) -> Vec<f32> {
    match to_torch_permutation(layer) {
        Some((shape, axes)) => {
            // Invert: the torch-layout shape is `shape` permuted by `axes`; permute back.
            let torch_shape = axes.map(|a| shape[a]);
            let mut inverse = [0usize; 4];
            for (i, &a) in axes.iter().enumerate() {
                inverse[a] = i;
            }
            permute(torch, torch_shape, inverse)
        }
        None => torch.to_vec(),
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Serializes the network as safetensors (`conv1.weight` [32,1,3,3], `conv1.bias` [32], …).
pub fn to_safetensors(net: &MnistNet, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for layer in Layer::ALL {
        tensors.push((
            format!("{}.weight", layer.name()),
            layer.weight_shape().to_vec(),
            f32_bytes(&torch_weight(net, layer)),
        ));
        let bias = net.tensors()[2 * layer as usize + 1];
        tensors.push((
            format!("{}.bias", layer.name()),
            vec![layer.bias_len()],
            f32_bytes(bias),
        ));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Weights(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Weights(e.to_string()))
}

/// MNISTNet's eight tensors in a file's listing, in the order of [`Layer::ALL`], weight then
/// bias: each by its PyTorch name, of its shape, in a float dtype (F32, F16 or BF16, read as
/// f32). A reader's checkpoint with these names is a network the whole app can run.
pub fn mnistnet_entries(entries: &[Entry]) -> Result<Vec<Entry>> {
    let mut found = Vec::with_capacity(8);
    for layer in Layer::ALL {
        for (suffix, shape) in [
            ("weight", layer.weight_shape().to_vec()),
            ("bias", vec![layer.bias_len()]),
        ] {
            let name = format!("{}.{suffix}", layer.name());
            let e = entries
                .iter()
                .find(|e| e.name == name)
                .ok_or_else(|| Error::Weights(format!("missing tensor {name}")))?;
            if e.shape != shape {
                return Err(Error::Weights(format!(
                    "{name} has shape {:?}, expected {shape:?}",
                    e.shape
                )));
            }
            if !e.dtype.readable() {
                return Err(Error::Weights(format!(
                    "{name} is {}, expected F32, F16 or BF16",
                    e.dtype.name()
                )));
            }
            found.push(e.clone());
        }
    }
    Ok(found)
}

/// MNISTNet from the values of the eight tensors [`mnistnet_entries`] lists, in its order.
pub fn from_values(values: &[Vec<f32>]) -> Result<MnistNet> {
    let mut net = MnistNet::zeros();
    for layer in Layer::ALL {
        let (w, b) = (&values[2 * layer as usize], &values[2 * layer as usize + 1]);
        if w.len() != layer.weight_shape().iter().product::<usize>() || b.len() != layer.bias_len()
        {
            return Err(Error::Weights(format!(
                "{} has the wrong number of values",
                layer.name()
            )));
        }
        set_torch_weight(&mut net, layer, w);
        net.tensors_mut()[2 * layer as usize + 1].copy_from_slice(b);
    }
    Ok(net)
}

/// Loads MNISTNet from safetensors (a whole file in memory): its header bounded and checked
/// as any reader's file is (quant_core::tensor_file), then the eight tensors by name, shape and
/// dtype, every value finite.
pub fn from_safetensors(bytes: &[u8]) -> Result<MnistNet> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::Weights(format!(
            "file is {} bytes, more than the {MAX_BYTES} allowed",
            bytes.len()
        )));
    }
    let invalid = |e: Error| match e {
        Error::File(why) => Error::Weights(format!("not a valid safetensors file: {why}")),
        other => other,
    };
    let len = bytes.len() as u64;
    let head = tensor_file::header_len(bytes, len).map_err(invalid)?;
    let entries = tensor_file::list(&bytes[..head as usize], len).map_err(invalid)?;
    let values = mnistnet_entries(&entries)?
        .iter()
        .map(|e| tensor_file::read(e, &bytes[e.start as usize..e.end as usize]))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| match e {
            Error::File(why) => Error::Weights(why),
            other => other,
        })?;
    from_values(&values)
}

/// The metadata stored in a safetensors header (the model card's key facts).
pub fn metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Weights(format!("not a valid safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_preserves_every_value() {
        let net = MnistNet::init(3);
        let meta = HashMap::from([("seed".to_string(), "3".to_string())]);
        let bytes = to_safetensors(&net, meta).unwrap();
        assert_eq!(from_safetensors(&bytes).unwrap(), net);
        assert_eq!(metadata(&bytes).unwrap()["seed"], "3");
    }

    #[test]
    fn torch_layout_is_channel_major() {
        // conv2 compute index (o, ky, kx, c) = o·288 + (ky·3 + kx)·32 + c must land at torch
        // index (o, c, ky, kx) = o·288 + c·9 + ky·3 + kx.
        let mut net = MnistNet::zeros();
        let (o, ky, kx, c) = (5, 2, 1, 17);
        net.conv2_w[[o, (ky * 3 + kx) * 32 + c]] = 1.0;
        let t = torch_weight(&net, Layer::Conv2);
        assert_eq!(
            t.iter().position(|&v| v == 1.0),
            Some(o * 288 + c * 9 + ky * 3 + kx)
        );
        // fc1 compute input (h, w, c) = (h·7 + w)·64 + c ↔ torch flatten c·49 + h·7 + w.
        let (j, h, w, c) = (100, 3, 6, 40);
        net.fc1_w[[j, (h * 7 + w) * 64 + c]] = 2.0;
        let t = torch_weight(&net, Layer::Fc1);
        assert_eq!(
            t.iter().position(|&v| v == 2.0),
            Some(j * 3136 + c * 49 + h * 7 + w)
        );
    }

    #[test]
    fn broken_files_are_refused_with_a_reason() {
        let err = |b: &[u8]| from_safetensors(b).unwrap_err().to_string();
        assert!(err(b"not safetensors").contains("not a valid safetensors"));
        assert!(err(&[]).contains("not a valid safetensors"));
        let good = to_safetensors(&MnistNet::init(0), HashMap::new()).unwrap();
        assert!(err(&good[..good.len() - 10]).contains("not a valid safetensors"));
        assert!(err(&vec![0u8; MAX_BYTES + 1]).contains("allowed"));

        let b = vec![0u8; 40];
        let wrong_shape = safetensors::serialize(
            [(
                "conv1.weight",
                TensorView::new(Dtype::F32, vec![10], &b).unwrap(),
            )],
            None,
        )
        .unwrap();
        assert!(err(&wrong_shape).contains("expected [32, 1, 3, 3]"));
        let missing = safetensors::serialize(
            [(
                "fc9.weight",
                TensorView::new(Dtype::F32, vec![10], &b).unwrap(),
            )],
            None,
        )
        .unwrap();
        assert!(err(&missing).contains("missing tensor conv1.weight"));

        let mut nan = MnistNet::init(0);
        nan.fc2_w[[1, 2]] = f32::NAN;
        let bytes = to_safetensors(&nan, HashMap::new()).unwrap();
        assert!(err(&bytes).contains("\"fc2.weight\" has 1 values that are NaN or infinite"));
    }

    #[test]
    fn a_bf16_checkpoint_is_the_network_its_values_truncate_to() {
        // A reader's file in BF16 (`model.bfloat16().state_dict()`, here by truncation), with
        // an extra tensor, which is ignored.
        let net = MnistNet::init(4);
        let bf16 = |v: &[f32]| -> (Vec<u8>, Vec<f32>) {
            let bits: Vec<u16> = v.iter().map(|x| (x.to_bits() >> 16) as u16).collect();
            (
                bits.iter().flat_map(|h| h.to_le_bytes()).collect(),
                bits.iter()
                    .map(|&h| f32::from_bits(u32::from(h) << 16))
                    .collect(),
            )
        };
        let mut tensors = vec![("extra".to_string(), "F32", vec![1], vec![0u8; 4])];
        let mut rounded = net.clone();
        for layer in Layer::ALL {
            let (bytes, back) = bf16(&torch_weight(&net, layer));
            set_torch_weight(&mut rounded, layer, &back);
            tensors.push((
                format!("{}.weight", layer.name()),
                "BF16",
                layer.weight_shape().to_vec(),
                bytes,
            ));
            let (bytes, back) = bf16(net.tensors()[2 * layer as usize + 1]);
            rounded.tensors_mut()[2 * layer as usize + 1].copy_from_slice(&back);
            tensors.push((
                format!("{}.bias", layer.name()),
                "BF16",
                vec![layer.bias_len()],
                bytes,
            ));
        }
        let bytes = tensor_file::write_safetensors(&tensors, &[]);
        assert_eq!(from_safetensors(&bytes).unwrap(), rounded);
        assert_ne!(rounded, net);
        // A tensor in a dtype that is not read is named.
        tensors[1].1 = "I8";
        tensors[1].3.truncate(288);
        let err = from_safetensors(&tensor_file::write_safetensors(&tensors, &[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("conv1.weight is I8, expected F32, F16 or BF16"),
            "{err}"
        );
    }
}
