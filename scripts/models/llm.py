"""A tiny decoder-only LLM for the llm tests, made with the `onnx` package: a word-level
tokenizer with the ChatML special tokens, and one attention layer (2 heads, a KV cache) whose
greedy answer is known.

The model counts. Head 0 attends to the FIRST number word of the conversation (the target),
head 1 to the LAST one (the count so far: the prompt's start, then each word it said). The
answer is the number after the last one (nine wraps to zero), and <|im_end|> once the last
number is the target. So with the system message "count to four" and the user message "start
at zero" the greedy answer is "one two three four", then <|im_end|>. During generation the
target is only in the cache (a generated token attends back to the system message), and the
count only follows the positions (the last number is the one with the highest position_id):
a lost cache or wrong positions change the answer. The logits are soft (3 for the next number,
6 for the end, 0 elsewhere), so sampling at temperature 1 really samples.

tiny-llm/                        model.onnx + tokenizer.json + generation_config.json: the
                                 optimum-style export with past_key_values.0.* / present.0.*
tiny-llm-nopast/                 the same model without past inputs (every step reruns all)
                                 and the same generation_config.json
tiny-llm-fp16/                   the same model with its cache and logits in float16, as a
                                 GPU export has them (inside, float32: its inputs are cast), and
                                 the same generation_config.json
tiny-llm-gqa/                    the same count as an onnxruntime-genai export computes it:
                                 ONNX Runtime's GroupQueryAttention (2 query heads sharing 1 KV
                                 head), no position_ids input (positions from the attention
                                 mask), and a genai_config.json instead of generation_config.json
tiny-llm-int4/                   tiny-llm-gqa with its weight matrices in 4 bits, as genai's int4
                                 exports carry them (com.microsoft.MatMulNBits; the weights are
                                 exact in 4 bits, so it counts the same)
tiny-llm-no-logits/              its output is named `scores`: refused at load
tiny-llm-past-without-present/   present.0.value is missing: refused at load
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = ["<unk>", "system", "user", "assistant", "count", "to", "start", "at", "from", "please", "hello"]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOCAB = SPECIAL + WORDS + NUMBERS
V = len(VOCAB)
EOS = VOCAB.index("<|im_end|>")
NUM = [VOCAB.index(n) for n in NUMBERS]
HEADS, D = 2, V  # head_dim = V: a value is its token's one-hot
A, B = 1e6, 20.0  # score = A * is_number -/+ B * position: the first / the last number wins
M, L = 3.0, 6.0  # the next number's logit, the end's logit


def weights(a=A):
    kemb = np.zeros((V, HEADS * D), np.float32)  # key: [A * is_number, position, 0...] per head
    vemb = np.zeros((V, HEADS * D), np.float32)  # value: the token's one-hot, per head
    for t in range(V):
        for hd in range(HEADS):
            vemb[t, hd * D + t] = 1
            if t in NUM:
                kemb[t, hd * D] = a
    pos = np.zeros(HEADS * D, np.float32)
    pos[[1, D + 1]] = 1
    q = np.zeros((1, HEADS, 1, D), np.float32)  # head 0 prefers early numbers, head 1 late ones
    q[0, 0, 0, :2] = [1, -B]
    q[0, 1, 0, :2] = [1, B]
    nxt = np.zeros((D, V), np.float32)  # the last number -> the next one; no number -> the end
    for t in range(V):
        nxt[t, NUM[(NUM.index(t) + 1) % 10] if t in NUM else EOS] = M
    sel = np.zeros((D, 10), np.float32)  # first + last, per number: 2 where they are the same
    for i, t in enumerate(NUM):
        sel[t, i] = 1
    end = np.zeros((10, V), np.float32)
    end[:, EOS] = L
    return dict(kemb=kemb, vemb=vemb, pos=pos, q=q, nxt=nxt, sel=sel, end=end)


def model(path, past=True, logits="logits", present_value=True, fp16=False):
    # float16 holds at most 65504: a smaller A, still far above B * any position of the tests.
    w = weights(a=1e4 if fp16 else A)
    heads = lambda x, y: [  # [b, s, H*D] -> [b, H, s, D]
        h.make_node("Reshape", [x, "split_heads"], [y + "_bshd"]),
        h.make_node("Transpose", [y + "_bshd"], [y], perm=[0, 2, 1, 3]),
    ]
    # The cache the attention reads, in float32.
    kv_key, kv_value = ("present_key", "present_value") if fp16 else ("present.0.key", "present.0.value")
    nodes = [
        h.make_node("Gather", ["kemb", "input_ids"], ["k_tok"]),
        h.make_node("Cast", ["position_ids"], ["pos_f"], to=T.FLOAT),
        h.make_node("Unsqueeze", ["pos_f", "last_axis"], ["pos_col"]),
        h.make_node("Mul", ["pos_col", "pos"], ["k_pos"]),
        h.make_node("Add", ["k_tok", "k_pos"], ["k_flat"]),
        *heads("k_flat", "key"),
        h.make_node("Gather", ["vemb", "input_ids"], ["v_flat"]),
        *heads("v_flat", "value"),
    ]
    if past and fp16:
        nodes += [
            h.make_node("Cast", ["past_key_values.0.key"], ["past_key"], to=T.FLOAT),
            h.make_node("Cast", ["past_key_values.0.value"], ["past_value"], to=T.FLOAT),
            h.make_node("Concat", ["past_key", "key"], ["present_key"], axis=2),
            h.make_node("Concat", ["past_value", "value"], ["present_value"], axis=2),
            h.make_node("Cast", ["present_key"], ["present.0.key"], to=T.FLOAT16),
            h.make_node("Cast", ["present_value"], ["present.0.value"], to=T.FLOAT16),
        ]
    elif past:
        nodes += [
            h.make_node("Concat", ["past_key_values.0.key", "key"], ["present.0.key"], axis=2),
            h.make_node("Concat", ["past_key_values.0.value", "value"], ["present.0.value"], axis=2),
        ]
    else:
        nodes += [
            h.make_node("Identity", ["key"], ["present.0.key"]),
            h.make_node("Identity", ["value"], ["present.0.value"]),
        ]
    nodes += [
        # Causal mask over the whole sequence: query i (at past + i) sees key j <= past + i,
        # where attention_mask[j] is 1.
        h.make_node("Shape", [kv_key], ["kv_shape"]),
        h.make_node("Gather", ["kv_shape", "two"], ["total"]),
        h.make_node("Shape", ["input_ids"], ["ids_shape"]),
        h.make_node("Gather", ["ids_shape", "one"], ["seq"]),
        h.make_node("Sub", ["total", "seq"], ["past_len"]),
        h.make_node("Range", ["zero", "total", "one"], ["key_idx"]),
        h.make_node("Range", ["past_len", "total", "one"], ["query_idx"]),
        h.make_node("Unsqueeze", ["query_idx", "last_axis"], ["query_col"]),
        h.make_node("LessOrEqual", ["key_idx", "query_col"], ["causal"]),
        h.make_node("Cast", ["attention_mask"], ["mask_b"], to=T.BOOL),
        h.make_node("Unsqueeze", ["mask_b", "axis_1"], ["mask_b1"]),
        h.make_node("And", ["mask_b1", "causal"], ["allowed_bst"]),
        h.make_node("Unsqueeze", ["allowed_bst", "axis_1"], ["allowed"]),
        h.make_node("Transpose", [kv_key], ["key_t"], perm=[0, 1, 3, 2]),
        h.make_node("MatMul", ["q", "key_t"], ["raw"]),
        h.make_node("Where", ["allowed", "raw", "neg"], ["att_scores"]),
        h.make_node("Softmax", ["att_scores"], ["attn"], axis=-1),
        h.make_node("MatMul", ["attn", kv_value], ["heads_out"]),
        h.make_node("Gather", ["heads_out", "zero"], ["first"], axis=1),
        h.make_node("Gather", ["heads_out", "one"], ["last"], axis=1),
        # Readout: the next number after the last; the end when first == last.
        h.make_node("MatMul", ["last", "nxt"], ["count_logits"]),
        h.make_node("Add", ["first", "last"], ["both"]),
        h.make_node("MatMul", ["both", "sel"], ["agree"]),
        h.make_node("Sub", ["agree", "f_one"], ["agree_1"]),
        h.make_node("Relu", ["agree_1"], ["same"]),
        h.make_node("MatMul", ["same", "end"], ["end_logits"]),
        h.make_node("Add", ["count_logits", "end_logits"], ["logits_f32" if fp16 else logits]),
    ]
    if fp16:
        nodes.append(h.make_node("Cast", ["logits_f32"], [logits], to=T.FLOAT16))
    io_type = T.FLOAT16 if fp16 else T.FLOAT
    kv = lambda n, s: h.make_tensor_value_info(n, io_type, ["batch", HEADS, s, D])
    inputs = [
        h.make_tensor_value_info("input_ids", T.INT64, ["batch", "seq"]),
        h.make_tensor_value_info("attention_mask", T.INT64, ["batch", "total"]),
        h.make_tensor_value_info("position_ids", T.INT64, ["batch", "seq"]),
    ]
    if past:
        inputs += [kv("past_key_values.0.key", "past"), kv("past_key_values.0.value", "past")]
    outputs = [h.make_tensor_value_info(logits, io_type, ["batch", "seq", V]), kv("present.0.key", "total")]
    if present_value:
        outputs.append(kv("present.0.value", "total"))
    consts = dict(
        split_heads=np.array([0, 0, HEADS, D], np.int64),
        last_axis=np.array([-1], np.int64),
        axis_1=np.array([1], np.int64),
        zero=np.array(0, np.int64),
        one=np.array(1, np.int64),
        two=np.array(2, np.int64),
        neg=np.array(-1e30, np.float32),
        f_one=np.array(1, np.float32),
    )
    inits = [nh.from_array(v, k) for k, v in {**w, **consts}.items()]
    g = h.make_graph(nodes, "tiny_llm", inputs, outputs, initializer=inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    os.makedirs(path, exist_ok=True)
    onnx.save(m, f"{path}/model.onnx")
    tokenizer(path)


BLOCK = 16  # MatMulNBits' block along K


def matmul_nbits(a, weight, w, out):
    """`a @ w` as com.microsoft.MatMulNBits computes it from 4-bit weights (genai's int4
    exports): `w` [K, N] quantized per column in blocks of BLOCK along K, two weights a byte (the
    first in the low nibble), scale 1 and zero point 8, so whole numbers from -8 to 7 are exact.
    Answers the node and its initializers (named after `weight`)."""
    k, n = w.shape
    blocks = -(-k // BLOCK)
    q = np.full((n, blocks * BLOCK), 8, np.int64)
    q[:, :k] = w.T + 8
    assert np.all(w == np.round(w)) and q.min() >= 0 and q.max() <= 15, "not exact in 4 bits"
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8).reshape(n, blocks, BLOCK // 2)
    zero_points = np.full((n, -(-blocks // 2)), 0x88, np.uint8).reshape(-1)
    inits = [
        nh.from_array(packed, f"{weight}_q4"),
        nh.from_array(np.ones(n * blocks, np.float32), f"{weight}_scales"),
        nh.from_array(zero_points, f"{weight}_zero_points"),
    ]
    node = h.make_node(
        "MatMulNBits", [a, f"{weight}_q4", f"{weight}_scales", f"{weight}_zero_points"], [out],
        domain="com.microsoft", K=k, N=n, bits=4, block_size=BLOCK,
    )
    return node, inits


def gqa_model(path, int4=False):
    """The count through com.microsoft.GroupQueryAttention, as genai's model builder exports
    decoders: one KV head (keys and values were the same for both heads already), the two
    queries constant per head, positions made inside from the attention mask. With `int4`, the
    three weight matrices after the attention are 4-bit (MatMulNBits)."""
    w = weights()
    kemb, vemb = w["kemb"][:, :D], w["vemb"][:, :D]  # one KV head
    q = w["q"][0, :, 0, :].reshape(1, 1, HEADS * D)
    nodes = [
        # past_len = total - seq; positions past_len .. total - 1.
        h.make_node("Shape", ["attention_mask"], ["mask_shape"]),
        h.make_node("Gather", ["mask_shape", "one"], ["total"]),
        h.make_node("Shape", ["input_ids"], ["ids_shape"]),
        h.make_node("Gather", ["ids_shape", "one"], ["seq"]),
        h.make_node("Sub", ["total", "seq"], ["past_len"]),
        h.make_node("Range", ["past_len", "total", "one"], ["positions"]),
        h.make_node("Cast", ["positions"], ["pos_f"], to=T.FLOAT),
        h.make_node("Unsqueeze", ["pos_f", "last_axis"], ["pos_col"]),
        h.make_node("Mul", ["pos_col", "pos"], ["k_pos"]),
        h.make_node("Gather", ["kemb", "input_ids"], ["k_tok"]),
        h.make_node("Add", ["k_tok", "k_pos"], ["key"]),
        h.make_node("Gather", ["vemb", "input_ids"], ["value"]),
        # The queries, the same for every token: [1, seq, HEADS * D].
        h.make_node("Unsqueeze", ["seq", "zero_axis"], ["seq_1d"]),
        h.make_node("Concat", ["one_1d", "seq_1d", "one_1d"], ["q_shape"], axis=0),
        h.make_node("Expand", ["q", "q_shape"], ["query"]),
        # genai's: seqlens_k = the tokens seen - 1, total_sequence_length = the mask's width.
        h.make_node("ReduceSum", ["attention_mask", "one_1d"], ["seen"], keepdims=0),
        h.make_node("Sub", ["seen", "one"], ["seen_1"]),
        h.make_node("Cast", ["seen_1"], ["seqlens_k"], to=T.INT32),
        h.make_node("Cast", ["total"], ["total_sequence_length"], to=T.INT32),
        h.make_node(
            "GroupQueryAttention",
            ["query", "key", "value", "past_key_values.0.key", "past_key_values.0.value", "seqlens_k",
             "total_sequence_length"],
            ["attn", "present.0.key", "present.0.value"],
            domain="com.microsoft", num_heads=HEADS, kv_num_heads=1, scale=1.0,
        ),
        h.make_node("Reshape", ["attn", "split_heads"], ["heads_out"]),  # [b, s, HEADS, D]
        h.make_node("Gather", ["heads_out", "zero"], ["first"], axis=2),
        h.make_node("Gather", ["heads_out", "one"], ["last"], axis=2),
        h.make_node("MatMul", ["last", "nxt"], ["count_logits"]),
        h.make_node("Add", ["first", "last"], ["both"]),
        h.make_node("MatMul", ["both", "sel"], ["agree"]),
        h.make_node("Sub", ["agree", "f_one"], ["agree_1"]),
        h.make_node("Relu", ["agree_1"], ["same"]),
        h.make_node("MatMul", ["same", "end"], ["end_logits"]),
        h.make_node("Add", ["count_logits", "end_logits"], ["logits"]),
    ]
    kv = lambda n, s: h.make_tensor_value_info(n, T.FLOAT, ["batch", 1, s, D])
    inputs = [
        h.make_tensor_value_info("input_ids", T.INT64, ["batch", "seq"]),
        h.make_tensor_value_info("attention_mask", T.INT64, ["batch", "total"]),
        kv("past_key_values.0.key", "past"),
        kv("past_key_values.0.value", "past"),
    ]
    outputs = [
        h.make_tensor_value_info("logits", T.FLOAT, ["batch", "seq", V]),
        kv("present.0.key", "total"),
        kv("present.0.value", "total"),
    ]
    extra_inits = []
    consts = dict(
        kemb=kemb, vemb=vemb, q=q, pos=w["pos"][:D], nxt=w["nxt"], sel=w["sel"], end=w["end"],
        split_heads=np.array([0, 0, HEADS, D], np.int64),
        last_axis=np.array([-1], np.int64),
        zero_axis=np.array([0], np.int64),
        one_1d=np.array([1], np.int64),
        zero=np.array(0, np.int64),
        one=np.array(1, np.int64),
        f_one=np.array(1, np.float32),
    )
    if int4:
        for i, node in enumerate(nodes):
            weight = node.input[1] if node.op_type == "MatMul" else None
            if weight in ("nxt", "sel", "end"):
                nodes[i], extra = matmul_nbits(node.input[0], weight, consts.pop(weight), node.output[0])
                extra_inits += extra
    inits = [nh.from_array(v, k) for k, v in consts.items()] + extra_inits
    g = h.make_graph(nodes, "tiny_llm_gqa", inputs, outputs, initializer=inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    os.makedirs(path, exist_ok=True)
    onnx.save(m, f"{path}/model.onnx")
    tokenizer(path)
    genai = {"model": {"type": "qwen2", "eos_token_id": [EOS, VOCAB.index("<|endoftext|>")],
                       "decoder": {"filename": "model.onnx", "num_attention_heads": HEADS,
                                   "num_key_value_heads": 1, "head_size": D}}}
    with open(f"{path}/genai_config.json", "w") as f:
        json.dump(genai, f)


def tokenizer(path):
    """A Hugging Face tokenizers WordLevel tokenizer: lower case, split on white space, the
    ChatML markers as special tokens; no decoder, so decoding joins the words with spaces."""
    added = [
        dict(id=i, content=t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
        for i, t in enumerate(SPECIAL)
    ]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(VOCAB)}, "unk_token": "<unk>"},
    }
    with open(f"{path}/tokenizer.json", "w") as f:
        json.dump(tok, f, indent=1)


def generation_config(path):
    """The end tokens as Qwen2.5's: <|im_end|> and <|endoftext|>."""
    with open(f"{path}/generation_config.json", "w") as f:
        json.dump({"eos_token_id": [EOS, VOCAB.index("<|endoftext|>")]}, f)


out = sys.argv[1]
model(f"{out}/tiny-llm")
generation_config(f"{out}/tiny-llm")
model(f"{out}/tiny-llm-nopast", past=False)
generation_config(f"{out}/tiny-llm-nopast")
model(f"{out}/tiny-llm-fp16", fp16=True)
gqa_model(f"{out}/tiny-llm-gqa")
gqa_model(f"{out}/tiny-llm-int4", int4=True)
generation_config(f"{out}/tiny-llm-fp16")
model(f"{out}/tiny-llm-no-logits", logits="scores")
model(f"{out}/tiny-llm-past-without-present", present_value=False)
