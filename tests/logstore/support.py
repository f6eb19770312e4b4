"""Records in predlog's shapes for the log store's tests."""

from __future__ import annotations


def prediction(i: int, time: str, role: str = "production", **extra: object) -> dict:
    return {
        "request_id": f"r{i}", "time": time, "model_version": "v1", "role": role,
        "features": {"age": 30 + i, "city": "Oslo"}, "score": 0.25, "prediction": 0, **extra,
    }  # fmt: skip


def feedback(i: int, label: object, time: str) -> dict:
    return {"request_id": f"r{i}", "label": label, "time": time}
