"""What this CPU runs well, and so which embedding backend ``auto`` picks.

Why not let each library decide: OpenVINO turns bf16 on wherever the CPU has AVX512_BF16,
and without AMX that bf16 is converted in software around fp32 maths: on a 2-vCPU Xeon
without AMX it ran at 0.8-1.0x the torch baseline while its own fp32 ran 1.3x faster. So the
choice is made here, from the CPU's flags, with the reason kept for the user to see:

- AMX (``amx_bf16``): bf16 tiles do the matrix maths natively -> OpenVINO bf16.
- VNNI (``avx512_vnni`` or ``avx_vnni``) without AMX: int8 dot products at 4x the fp32 rate ->
  ONNX Runtime int8 (same retrieval quality on SciFact, cosine ~0.995 to fp32).
- otherwise: OpenVINO fp32.
``embed_backend`` other than ``auto`` overrides this.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["CpuInfo", "cpu_info", "choose_backend", "usable_cpus"]


@dataclass(frozen=True, slots=True)
class CpuInfo:
    model: str
    flags: frozenset[str]

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags

    @property
    def bf16(self) -> bool:
        return "avx512_bf16" in self.flags

    @property
    def vnni(self) -> bool:
        return bool({"avx512_vnni", "avx_vnni"} & self.flags)

    def summary(self) -> str:
        """The model and the flags that matter for the choice, for figures and logs."""
        keys = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
        have = [k for k in keys if k in self.flags]
        return f"{self.model} [{' '.join(have) or 'no AVX2'}]"


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: no flags known, the safe fp32 choice follows
        pass
    return CpuInfo(model or "unknown CPU", frozenset(flags))


def choose_backend(info: CpuInfo | None = None) -> list[tuple[str, str]]:
    """Backends to try, best first, each with the reason it is chosen (in words)."""
    info = info or cpu_info()
    if info.amx:
        first = [("openvino-bf16", "the CPU has AMX, so bf16 runs natively (OpenVINO bf16)")]
    elif info.vnni:
        first = [(
            "onnx-int8",
            "the CPU has VNNI int8 dot products but no AMX, where bf16 is emulated "
            "(ONNX Runtime int8)",
        )]  # fmt: skip
    else:
        first = [("openvino-f32", "the CPU has neither AMX nor VNNI (OpenVINO fp32)")]
    rest = [
        ("openvino-f32", "fallback: OpenVINO fp32"),
        ("onnx-int8", "fallback: ONNX Runtime int8"),
        ("onnx", "fallback: ONNX Runtime fp32"),
        ("torch", "fallback: sentence-transformers on torch"),
    ]
    seen, out = set(), []
    for name, why in first + rest:
        if name not in seen:
            seen.add(name)
            out.append((name, why))
    return out


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
