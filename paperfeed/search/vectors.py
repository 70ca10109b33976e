"""The vector index: nearest papers to a query vector, persisted beside the database
(``VectorIndex``), or held in memory and loaded from the database (``StoreVectors``).

Files in the index folder (one folder per model):
  state.json    model_id, dim, rows, and ``seq``: the last stored-vector write followed
  pks.i64       the paper pk of each row
  vectors.f32   each row's float32 vector (the exact scores; memory-mapped)
  hnsw.usearch  an HNSW graph over int8-quantised rows, only at ``exact_threshold`` rows
                and above

Why two regimes: below ~100k papers an exact matrix product is a few milliseconds and has
perfect recall; above, an HNSW graph answers in well under a millisecond and its int8
candidates are re-scored exactly from the float vectors, which restores the ranking that
quantisation blurs. Everything here is derived from the ``embeddings`` table and follows it
incrementally by ``seq``; deleting the folder only costs a rebuild.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..store import Store

__all__ = ["VectorIndex", "StoreVectors", "unpack"]

_HNSW_CONNECTIVITY = 16
_HNSW_EXPANSION_ADD = 128
_HNSW_EXPANSION_SEARCH = 400  # recall@10 0.98 at 1M (0.90 with 200), +0.4 ms
# HNSW candidates re-scored exactly per query (at least; more when more results are asked).
_RESCORE = 200


def unpack_many(blobs: list[bytes], dim: int) -> np.ndarray:
    """Rows of stored vectors as one float32 matrix (one copy, not one array per row)."""
    joined = b"".join(blobs)
    if len(joined) != len(blobs) * 4 * dim:
        return np.stack([unpack(b, dim) for b in blobs])  # names the bad row
    return np.frombuffer(joined, dtype="<f4").reshape(len(blobs), dim)


def unpack(blob: bytes, dim: int) -> np.ndarray:
    v = np.frombuffer(blob, dtype="<f4")
    if v.shape[0] != dim:
        raise ValueError(f"stored vector has {v.shape[0]} dimensions, expected {dim}")
    return v


@dataclass(slots=True)
class _Snapshot:
    """What one reader sees; replaced whole when the files change, so threads never see a
    half-updated index."""

    rows: int
    pks: np.ndarray  # int64[rows]
    sorted_pks: np.ndarray
    order: np.ndarray  # rows sorted by pk
    vectors: np.ndarray  # float32[rows, dim] (in memory below the threshold, else mmap)
    hnsw: object | None
    stamp: tuple


class VectorIndex:
    def __init__(
        self, path: str | Path | None, model_id: str, dim: int, exact_threshold: int = 100_000
    ):
        self.path = Path(path) if path is not None else None
        self.model_id = model_id
        self.dim = int(dim)
        self.exact_threshold = int(exact_threshold)
        self._snap: _Snapshot | None = None
        self._lock = threading.Lock()

    # --- files ---------------------------------------------------------------------------
    def _f(self, name: str) -> Path:
        return self.path / name

    def state(self) -> dict:
        try:
            st = json.loads(self._f("state.json").read_text())
        except (FileNotFoundError, ValueError):
            return {"seq": 0, "rows": 0}
        if st.get("model_id") != self.model_id or st.get("dim") != self.dim:
            return {"seq": 0, "rows": 0}
        return st

    def _write_state(self, st: dict) -> None:
        tmp = self._f("state.json.tmp")
        tmp.write_text(json.dumps(st))
        os.replace(tmp, self._f("state.json"))

    # --- writing (one writer: ``paperfeed index``) ---------------------------------------
    def sync(self, store: Store, on_rows: Callable[[int], None] | None = None) -> dict:
        """Bring the files up to date with the stored vectors of this model."""
        self.path.mkdir(parents=True, exist_ok=True)
        st = self.state()
        rows, seq = int(st.get("rows", 0)), int(st.get("seq", 0))
        if rows == 0:
            for name in ("pks.i64", "vectors.f32", "hnsw.usearch"):
                self._f(name).unlink(missing_ok=True)
        pks = np.fromfile(self._f("pks.i64"), dtype="<i8", count=rows) if rows else np.empty(0, "<i8")
        # Drop anything written after the last recorded state (an interrupted sync).
        for name, width in (("pks.i64", 8), ("vectors.f32", 4 * self.dim)):
            f = self._f(name)
            if f.exists() and f.stat().st_size != rows * width:
                with f.open("r+b") as fh:
                    fh.truncate(rows * width)
        row_of = {int(p): i for i, p in enumerate(pks)}
        changed_rows: list[int] = []
        added = 0
        with self._f("pks.i64").open("ab") as fp, self._f("vectors.f32").open("r+b" if rows else "wb") as fv:
            for batch in store.iter_embeddings(self.model_id, seq):
                new_pks, new_vecs = [], []
                for s, pk, blob in batch:
                    vec = unpack(blob, self.dim)
                    r = row_of.get(pk)
                    if r is None:
                        row_of[pk] = rows + len(new_pks)
                        new_pks.append(pk)
                        new_vecs.append(vec)
                    else:
                        # A re-embedded paper: overwrite its row in place.
                        fv.seek(r * 4 * self.dim)
                        fv.write(vec.astype("<f4").tobytes())
                        changed_rows.append(r)
                if new_pks:
                    fv.seek(rows * 4 * self.dim)
                    fv.write(np.asarray(new_vecs, dtype="<f4").tobytes())
                    fp.write(np.asarray(new_pks, dtype="<i8").tobytes())
                    rows += len(new_pks)
                    added += len(new_pks)
                seq = batch[-1][0]
                if on_rows:
                    on_rows(len(batch))
        hnsw_rows = int(st.get("hnsw_rows", 0))
        if rows >= self.exact_threshold:
            hnsw_rows = self._update_hnsw(rows, hnsw_rows, changed_rows)
        else:
            self._f("hnsw.usearch").unlink(missing_ok=True)
            hnsw_rows = 0
        self._write_state(
            {"model_id": self.model_id, "dim": self.dim, "rows": rows, "seq": seq,
             "hnsw_rows": hnsw_rows}
        )
        return {"rows": rows, "added": added, "replaced": len(changed_rows)}

    def _new_hnsw(self):
        from usearch.index import Index

        return Index(
            ndim=self.dim,
            metric="cos",
            dtype="i8",
            connectivity=_HNSW_CONNECTIVITY,
            expansion_add=_HNSW_EXPANSION_ADD,
            expansion_search=_HNSW_EXPANSION_SEARCH,
        )

    def _update_hnsw(self, rows: int, hnsw_rows: int, changed_rows: list[int]) -> int:
        """Add rows [hnsw_rows, rows) and re-add changed ones; keys are row numbers."""
        vecs = np.memmap(self._f("vectors.f32"), dtype="<f4", mode="r", shape=(rows, self.dim))
        index = self._new_hnsw()
        f = self._f("hnsw.usearch")
        if hnsw_rows and f.exists():
            index.load(str(f))
        else:
            hnsw_rows = 0
        if index.size:
            stale = np.asarray(sorted(set(changed_rows)), dtype=np.uint64)
            stale = stale[stale < hnsw_rows] if stale.size else stale
            if stale.size:
                index.remove(stale)
                index.add(stale, np.ascontiguousarray(vecs[stale.astype(np.int64)]))
        step = 100_000
        for start in range(hnsw_rows, rows, step):
            end = min(rows, start + step)
            keys = np.arange(start, end, dtype=np.uint64)
            index.add(keys, np.ascontiguousarray(vecs[start:end]))
        tmp = self._f("hnsw.usearch.tmp")
        index.save(str(tmp))
        os.replace(tmp, f)
        return rows

    # --- reading -------------------------------------------------------------------------
    def _stamp(self) -> tuple:
        try:
            s = self._f("state.json").stat()
            return (s.st_mtime_ns, s.st_size)
        except FileNotFoundError:
            return ()

    def stamp(self) -> tuple:
        """Identity of the files on disk now (changes when ``sync`` rewrites them)."""
        return self._stamp()

    def snapshot(self) -> _Snapshot | None:
        """The current view, reloaded when ``paperfeed index`` changed the files."""
        stamp = self._stamp()
        snap = self._snap
        if snap is not None and snap.stamp == stamp:
            return snap
        with self._lock:
            if self._snap is not None and self._snap.stamp == stamp:
                return self._snap
            self._snap = self._load(stamp)
            return self._snap

    def _load(self, stamp: tuple) -> _Snapshot | None:
        st = self.state()
        rows = int(st.get("rows", 0))
        if not rows:
            return None
        pks = np.fromfile(self._f("pks.i64"), dtype="<i8", count=rows)
        vecs = np.memmap(self._f("vectors.f32"), dtype="<f4", mode="r", shape=(rows, self.dim))
        hnsw = None
        if st.get("hnsw_rows") == rows and self._f("hnsw.usearch").exists():
            hnsw = self._new_hnsw()
            hnsw.load(str(self._f("hnsw.usearch")))
        else:
            vecs = np.array(vecs)  # small enough to hold: exact search reads all of it
        order = np.argsort(pks, kind="stable")
        return _Snapshot(rows, pks, pks[order], order, vecs, hnsw, stamp)

    @property
    def uses_hnsw(self) -> bool:
        snap = self.snapshot()
        return snap is not None and snap.hnsw is not None

    @property
    def size(self) -> int:
        snap = self.snapshot()
        return snap.rows if snap else 0

    def rows_for(self, pks: list[int] | np.ndarray) -> np.ndarray:
        """Row numbers of the given pks (those without a vector are left out)."""
        snap = self.snapshot()
        if snap is None:
            return np.empty(0, dtype=np.int64)
        q = np.asarray(pks, dtype=np.int64)
        i = np.searchsorted(snap.sorted_pks, q)
        i = np.minimum(i, snap.rows - 1)
        ok = snap.sorted_pks[i] == q
        return snap.order[i[ok]]

    def vectors_for(self, pks: list[int]) -> dict[int, np.ndarray]:
        snap = self.snapshot()
        rows = self.rows_for(pks)
        if snap is None or not rows.size:
            return {}
        vecs = np.asarray(snap.vectors[rows])
        return {int(snap.pks[r]): v for r, v in zip(rows, vecs)}

    def score_pks(self, query: np.ndarray, pks: list[int]) -> dict[int, float]:
        """Exact cosine of the query with each given paper that has a vector."""
        snap = self.snapshot()
        rows = self.rows_for(pks)
        if snap is None or not rows.size:
            return {}
        s = np.asarray(snap.vectors[np.sort(rows)]) @ query
        return {int(snap.pks[r]): float(x) for r, x in zip(np.sort(rows), s)}

    def candidates(self, query: np.ndarray, count: int) -> list[int]:
        """pks of about the ``count`` nearest papers, unscored (HNSW order, or exact), for
        callers that filter them before scoring exactly (``score_pks``)."""
        snap = self.snapshot()
        if snap is None or count <= 0:
            return []
        q = np.asarray(query, dtype=np.float32)
        if snap.hnsw is None:
            return [pk for pk, _ in self._top(snap, None, snap.vectors @ q, count)]
        m = snap.hnsw.search(q, min(count, snap.rows), threads=1)
        return [int(p) for p in snap.pks[np.asarray(m.keys, dtype=np.int64)]]

    def search(
        self, query: np.ndarray, k: int, rows: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(pk, cosine) of the k nearest papers, best first; ``rows`` limits the search to
        those rows (searched exactly)."""
        snap = self.snapshot()
        if snap is None or k <= 0:
            return []
        q = np.asarray(query, dtype=np.float32)
        if rows is not None:
            if not rows.size:
                return []
            rows = np.sort(rows)
            scores = np.asarray(snap.vectors[rows]) @ q
            return self._top(snap, rows, scores, k)
        if snap.hnsw is None:
            return self._top(snap, None, snap.vectors @ q, k)
        want = max(_RESCORE, k + k // 2)
        m = snap.hnsw.search(q, want, threads=1)
        cand = np.sort(np.asarray(m.keys, dtype=np.int64))
        scores = np.asarray(snap.vectors[cand]) @ q
        return self._top(snap, cand, scores, k)

    @staticmethod
    def _top(snap: _Snapshot, rows, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        k = min(k, scores.shape[0])
        if k <= 0:
            return []
        idx = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(k)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        r = idx if rows is None else rows[idx]
        return [(int(snap.pks[i]), float(scores[j])) for i, j in zip(r, idx)]


class StoreVectors(VectorIndex):
    """The vectors of one model held in this process's memory, loaded from the store's
    ``embeddings`` table and kept current by following its ``seq``: nothing on disk, nothing
    another process wrote or must keep. The PostgreSQL backend uses it, where processes on
    several machines share one database and no folder.

    Searched exactly (a matrix product: ~10 ms at 100,000 papers on 2 cores). No HNSW graph:
    building one takes minutes per million vectors, which every process would pay at start.
    pgvector would move that into the server; it is not available here (see pg_search.py's
    ``pgvector_available``), so this is the fallback the issue allows.

    ``follow`` reads what was written since the last ``seq`` seen (two indexed queries when
    nothing was); callers decide how often (``snapshot`` never touches the database).
    Appended rows go into spare capacity that older snapshots do not see, so a reader keeps
    a consistent view while a follow runs; a re-embedded paper makes a new copy.
    """

    def __init__(self, model_id: str, dim: int):
        super().__init__(None, model_id, dim)
        self._buf = np.empty((0, self.dim), dtype="<f4")
        self._pk_buf = np.empty(0, dtype="<i8")
        self._rows = 0
        self.seq = 0
        self.checked_at = float("-inf")  # time.monotonic() of the last follow
        self._follow_lock = threading.Lock()

    def stamp(self) -> tuple:
        return (self.seq, self._rows)

    def snapshot(self) -> _Snapshot | None:
        return self._snap

    def state(self) -> dict:
        return {"model_id": self.model_id, "dim": self.dim, "rows": self._rows, "seq": self.seq}

    def follow(self, store: Store, now: float | None = None) -> int:
        """Load the vectors written since the last call; returns how many rows came."""
        import time

        with self._follow_lock:
            got = 0
            for batch in store.iter_embeddings(self.model_id, self.seq):
                self._take([pk for _, pk, _ in batch], unpack_many([b for _, _, b in batch],
                                                                   self.dim))
                self.seq = batch[-1][0]
                got += len(batch)
            self.checked_at = time.monotonic() if now is None else now
            return got

    def _take(self, pks: list[int], vecs: np.ndarray) -> None:
        rows = self._rows
        snap = self._snap
        new_pks = np.asarray(pks, dtype="<i8")
        # Keep the last vector of a paper written twice in one batch.
        _, last = np.unique(new_pks[::-1], return_index=True)
        keep = np.sort(len(new_pks) - 1 - last)
        new_pks, vecs = new_pks[keep], vecs[keep]
        at = np.full(len(new_pks), -1, dtype=np.int64)
        if snap is not None:
            i = np.minimum(np.searchsorted(snap.sorted_pks, new_pks), snap.rows - 1)
            hit = snap.sorted_pks[i] == new_pks
            at[hit] = snap.order[i[hit]]
        fresh = at < 0
        n_new = int(fresh.sum())
        buf, pk_buf = self._buf, self._pk_buf
        if (~fresh).any() or rows + n_new > buf.shape[0]:
            # A re-embedded paper, or no room: a new buffer, so no snapshot changes under
            # a reader.
            cap = max(rows + n_new, buf.shape[0] if (~fresh).any() else 2 * buf.shape[0], 1024)
            nb = np.empty((cap, self.dim), dtype="<f4")
            nb[:rows] = buf[:rows]
            npk = np.empty(cap, dtype="<i8")
            npk[:rows] = pk_buf[:rows]
            buf, pk_buf = nb, npk
        buf[at[~fresh]] = vecs[~fresh]
        buf[rows : rows + n_new] = vecs[fresh]
        pk_buf[rows : rows + n_new] = new_pks[fresh]
        rows += n_new
        self._buf, self._pk_buf, self._rows = buf, pk_buf, rows
        pks_view = pk_buf[:rows]
        order = np.argsort(pks_view, kind="stable")
        self._snap = _Snapshot(rows, pks_view, pks_view[order], order, buf[:rows], None,
                               (self.seq, rows))
