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
