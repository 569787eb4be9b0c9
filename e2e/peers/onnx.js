// The peers' CNN as an ONNX model (opset 17), encoded here so the benchmark needs no model file
// and no Python: a protobuf writer for the few ModelProto fields the graph uses.
'use strict';

const utf8 = new TextEncoder();
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}
// Field `f` as a varint (wire type 0) or as length-delimited bytes (wire type 2).
const int = (f, n) => [...varint(f << 3), ...varint(n)];
const bytes = (f, b) => [...varint((f << 3) | 2), ...varint(b.length), ...b];
const str = (f, s) => bytes(f, [...utf8.encode(s)]);
const msg = (f, ...parts) => bytes(f, parts.flat());

const FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;
// AttributeProto: name 1, i 3, ints 8, type 20.
const ints = (name, values) => [str(1, name), ...values.map((v) => int(8, v)), int(20, ATTR_INTS)].flat();
const one = (name, value) => [str(1, name), int(3, value), int(20, ATTR_INT)].flat();
// NodeProto: input 1, output 2, op_type 4, attribute 5.
const node = (op, inputs, outputs, attrs = []) =>
  msg(1, ...inputs.map((i) => str(1, i)), ...outputs.map((o) => str(2, o)), str(4, op), ...attrs.map((a) => bytes(5, a)));
// TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian, as ONNX specifies).
const tensor = (name, dims, data) =>
  msg(5, ...dims.map((d) => int(1, d)), int(2, FLOAT), str(8, name), bytes(9, [...new Uint8Array(data.buffer)]));
// ValueInfoProto: name 1, type 2 → TypeProto.tensor_type 1 → elem_type 1, shape 2 → dim 1
// (dim_value 1 or dim_param 2).
const value = (f, name, dims) =>
  msg(f, str(1, name), msg(2, msg(1, int(1, FLOAT), msg(2, ...dims.map((d) => msg(1, typeof d === 'string' ? str(2, d) : int(1, d)))))));

window.peerOnnx = (n) => {
  const conv = [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])];
  const pool = [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])];
  const graph = [
    node('Conv', ['x', 'w1', 'b1'], ['c1'], conv), node('Relu', ['c1'], ['r1']), node('MaxPool', ['r1'], ['p1'], pool),
    node('Conv', ['p1', 'w2', 'b2'], ['c2'], conv), node('Relu', ['c2'], ['r2']), node('MaxPool', ['r2'], ['p2'], pool),
    node('Flatten', ['p2'], ['f']),
    node('Gemm', ['f', 'w3', 'b3'], ['h'], [one('transB', 1)]), node('Relu', ['h'], ['hr']),
    node('Gemm', ['hr', 'w4', 'b4'], ['y'], [one('transB', 1)]),
    str(2, 'mnist'),
    tensor('w1', [32, 1, 3, 3], n.w1), tensor('b1', [32], n.b1),
    tensor('w2', [64, 32, 3, 3], n.w2), tensor('b2', [64], n.b2),
    tensor('w3', [128, 3136], n.w3), tensor('b3', [128], n.b3),
    tensor('w4', [10, 128], n.w4), tensor('b4', [10], n.b4),
    value(11, 'x', ['n', 1, 28, 28]), value(12, 'y', ['n', 10]),
  ];
  // ModelProto: ir_version 1, graph 7, opset_import 8 (domain 1, version 2).
  return new Uint8Array([...int(1, 8), ...msg(7, ...graph), ...msg(8, str(1, ''), int(2, 17))]);
};

// The same CNN converted as ONNX Runtime's quantizer writes a static int8 model in QOperator
// form: QuantizeLinear, QLinearConv (u8 activations, s8 weights, i32 bias; ReLU folded into the
// output's zero point 0), MaxPool and Flatten on the u8 codes, QGemm (com.microsoft) for the
// linear layers, DequantizeLinear. The scales are plausible constants: speed does not depend on
// them.
const UINT8 = 2;
const INT8 = 3;
const INT32 = 6;
const typed = (name, dims, type, data) =>
  msg(5, ...dims.map((d) => int(1, d)), int(2, type), str(8, name), bytes(9, [...new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]));
const scalarF = (name, v) => typed(name, [], FLOAT, Float32Array.of(v));
const scalarU8 = (name, v) => typed(name, [], UINT8, Uint8Array.of(v));
const scalarI8 = (name, v) => typed(name, [], INT8, Int8Array.of(v));
const contrib = (op, inputs, outputs, attrs = []) =>
  msg(1, ...inputs.map((i) => str(1, i)), ...outputs.map((o) => str(2, o)), str(4, op), ...attrs.map((a) => bytes(5, a)), str(7, 'com.microsoft'));

window.peerOnnxInt8 = (n) => {
  const conv = [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])];
  const pool = [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])];
  const act = { x: 1 / 255, a1: 0.01, a2: 0.03, a3: 0.15, y: 0.2 };
  const init = [];
  const layer = (w, b, name, inScale) => {
    const maxAbs = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const s = maxAbs / 127;
    const q = Int8Array.from(w, (v) => Math.round(v / s));
    const bias = Int32Array.from(b, (v) => Math.round(v / (s * inScale)));
    init.push(scalarF(`${name}_s`, s), scalarI8(`${name}_zp`, 0), typed(`${name}_b`, [b.length], INT32, bias));
    return q;
  };
  const w1 = layer(n.w1, n.b1, 'w1', act.x);
  const w2 = layer(n.w2, n.b2, 'w2', act.a1);
  const w3 = layer(n.w3, n.b3, 'w3', act.a2);
  const w4 = layer(n.w4, n.b4, 'w4', act.a3);
  for (const [k, v] of Object.entries(act)) init.push(scalarF(`${k}_s`, v), scalarU8(`${k}_zp`, k === 'y' ? 128 : 0));
  const graph = [
    node('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq']),
    node('QLinearConv', ['xq', 'x_s', 'x_zp', 'w1', 'w1_s', 'w1_zp', 'a1_s', 'a1_zp', 'w1_b'], ['c1'], conv),
    node('MaxPool', ['c1'], ['p1'], pool),
    node('QLinearConv', ['p1', 'a1_s', 'a1_zp', 'w2', 'w2_s', 'w2_zp', 'a2_s', 'a2_zp', 'w2_b'], ['c2'], conv),
    node('MaxPool', ['c2'], ['p2'], pool),
    node('Flatten', ['p2'], ['f']),
    contrib('QGemm', ['f', 'a2_s', 'a2_zp', 'w3', 'w3_s', 'w3_zp', 'w3_b', 'a3_s', 'a3_zp'], ['h'], [one('transB', 1)]),
    contrib('QGemm', ['h', 'a3_s', 'a3_zp', 'w4', 'w4_s', 'w4_zp', 'w4_b', 'y_s', 'y_zp'], ['yq'], [one('transB', 1)]),
    node('DequantizeLinear', ['yq', 'y_s', 'y_zp'], ['y']),
    str(2, 'mnist-int8'),
    typed('w1', [32, 1, 3, 3], INT8, w1), typed('w2', [64, 32, 3, 3], INT8, w2),
    typed('w3', [128, 3136], INT8, w3), typed('w4', [10, 128], INT8, w4),
    ...init,
    value(11, 'x', ['n', 1, 28, 28]), value(12, 'y', ['n', 10]),
  ];
  return new Uint8Array([...int(1, 8), ...msg(7, ...graph), ...msg(8, str(1, ''), int(2, 17)), ...msg(8, str(1, 'com.microsoft'), int(2, 1))]);
};
