"""SQLite queries for search: embeddings per model and anything the search indexes need.

Mixed into ``SQLiteStore``: methods use ``conn`` (reads, under ``self._lock``) and
``self._write()`` (one BEGIN IMMEDIATE transaction). Declare each public method on the
``Store`` interface in base.py too, so a PostgreSQL backend can implement the same.

The database is the source of truth for vectors: the vector index files beside it are
rebuilt from these rows (``iter_embeddings``) and follow new rows by ``seq``.
"""

from __future__ import annotations

from typing import Iterator

import orjson

__all__ = ["VectorsMixin"]


class VectorsMixin:
    def _model_key(
        self, conn, model_id: str, dim: int | None = None, create: bool = False
    ) -> int | None:
        row = conn.execute(
            "SELECT id, dim FROM embedding_models WHERE model_id = ?", (model_id,)
        ).fetchone()
        if row is not None:
            return row[0]
        if not create:
            return None
        return conn.execute(
            "INSERT INTO embedding_models (model_id, dim) VALUES (?, ?) RETURNING id",
            (model_id, int(dim or 0)),
        ).fetchone()[0]

    def embedded_hashes(self, model_id: str, pks: list[int]) -> dict[int, bytes]:
        with self._read() as conn:
            key = self._model_key(conn, model_id)
            if key is None or not pks:
                return {}
            return dict(
                conn.execute(
                    "SELECT paper_pk, text_hash FROM embeddings WHERE model = ? "
                    "AND paper_pk IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
                    (key, orjson.dumps(list(pks)).decode()),
                ).fetchall()
            )

    def put_embeddings(
        self,
        model_id: str,
        dim: int,
        rows: list[tuple[int, int, bytes, bytes]],
        checkpoint: tuple[str, int] | None = None,
    ) -> None:
        with self._write() as conn:
            key = self._model_key(conn, model_id, dim, create=True)
            seq = conn.execute(
                "SELECT coalesce(max(seq), 0) FROM embeddings WHERE model = ?", (key,)
            ).fetchone()[0]
            conn.executemany(
                "INSERT INTO embeddings (model, paper_pk, seq, embedded_rev, text_hash, vector) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model, paper_pk) DO UPDATE SET "
                "seq = excluded.seq, embedded_rev = excluded.embedded_rev, "
                "text_hash = excluded.text_hash, vector = excluded.vector",
                [
                    (key, pk, seq + i + 1, rev, h, vec)
                    for i, (pk, rev, h, vec) in enumerate(rows)
                ],
            )
            if checkpoint is not None:
                self._set_checkpoint(conn, *checkpoint)

    def iter_embeddings(
        self, model_id: str, since_seq: int = 0, batch: int = 20000
    ) -> Iterator[list[tuple[int, int, bytes]]]:
        with self._read() as conn:
            key = self._model_key(conn, model_id)
        if key is None:
            return
        last = since_seq
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    "SELECT seq, paper_pk, vector FROM embeddings WHERE model = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (key, last, batch),
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def get_embeddings(self, model_id: str, pks: list[int]) -> dict[int, bytes]:
        with self._read() as conn:
            key = self._model_key(conn, model_id)
            if key is None or not pks:
                return {}
            return dict(
                conn.execute(
                    "SELECT paper_pk, vector FROM embeddings WHERE model = ? "
                    "AND paper_pk IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
                    (key, orjson.dumps(list(pks)).decode()),
                ).fetchall()
            )

    def embedding_stats(self) -> list[dict]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT m.model_id, m.dim, count(e.paper_pk), coalesce(max(e.seq), 0) "
                "FROM embedding_models m LEFT JOIN embeddings e ON e.model = m.id "
                "GROUP BY m.id ORDER BY m.model_id"
            ).fetchall()
        return [{"model_id": m, "dim": d, "vectors": n, "max_seq": s} for m, d, n, s in rows]

    def count_changed(self, since_rev: int) -> int:
        with self._read() as conn:
            return conn.execute(
                "SELECT count(*) FROM papers WHERE rev > ?", (since_rev,)
            ).fetchone()[0]

    def get_checkpoint(self, name: str) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT value FROM search_checkpoints WHERE name = ?", (name,)
            ).fetchone()
        return row[0] if row else 0

    def set_checkpoint(self, name: str, value: int) -> None:
        with self._write() as conn:
            self._set_checkpoint(conn, name, value)

    @staticmethod
    def _set_checkpoint(conn, name: str, value: int) -> None:
        conn.execute(
            "INSERT INTO search_checkpoints (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, int(value)),
        )
