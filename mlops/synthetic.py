"""A seeded synthetic churn data set: the honest fallback when no real data is configured.

Twenty numeric features of different shapes (normal, skewed, bounded, heavy-tailed, counts;
some informative, some pure noise), two categorical features, about 25 % positives and a
little missingness. Everything downstream labels data from here as `synthetic`.
"""

from __future__ import annotations

from typing import Any

LABEL = "churned"
NUMERIC = [
    "age", "income", "tenure_months", "monthly_charges", "total_charges", "support_calls",
    "late_payments", "satisfaction", "data_usage_gb", "discount_rate", "account_balance",
    "logins_30d", "days_since_login", "contract_length", "devices", "credit_score",
    "noise_normal", "noise_uniform", "noise_lognormal", "noise_t",
]  # fmt: skip
CATEGORICAL = ["region", "plan"]
REGIONS = ["north", "south", "east", "west", "central"]
PLANS = ["basic", "standard", "premium"]


def generate(rows: int, seed: int) -> Any:
    """Return a DataFrame of `rows` rows; the same (rows, seed) always gives the same frame."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = rows
    age = np.clip(rng.normal(42, 13, n), 18, 90)
    income = rng.lognormal(10.6, 0.55, n)
    tenure = rng.integers(0, 120, n).astype(float)
    monthly = np.round(rng.gamma(4.0, 18.0, n), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.85, 1.0, n), 2)
    support_calls = rng.poisson(1.5, n).astype(float)
    late = rng.poisson(0.6, n).astype(float)
    satisfaction = np.clip(np.round(rng.beta(5, 2, n) * 10, 1), 0, 10)
    usage = rng.exponential(12.0, n)
    discount = rng.beta(1.2, 8.0, n)
    balance = rng.standard_t(3, n) * 150.0
    logins = rng.poisson(14, n).astype(float)
    days_since = rng.exponential(6.0, n)
    contract = rng.choice([1.0, 12.0, 24.0], n, p=[0.5, 0.3, 0.2])
    devices = rng.integers(1, 6, n).astype(float)
    credit = np.clip(rng.normal(680, 60, n), 300, 850)
    region = rng.choice(REGIONS, n, p=[0.25, 0.2, 0.2, 0.2, 0.15])
    plan = rng.choice(PLANS, n, p=[0.5, 0.35, 0.15])

    z = (
        -1.9
        + 0.9 * (support_calls - 1.5)
        + 0.8 * late
        - 0.75 * (satisfaction - 7.0)
        - 0.035 * (tenure - 60.0)
        + 0.02 * (monthly - 72.0)
        - 0.12 * (logins - 14.0)
        + 0.12 * (days_since - 6.0)
        - 0.06 * (contract - 8.0)
        - 3.0 * (discount - 0.13)
        + 0.4 * (plan == "basic")
        + 0.3 * (region == "south")
        # Non-linear effects a linear model cannot express: thresholds and interactions.
        + 1.6 * ((support_calls >= 3) & (satisfaction < 6.5))
        + 1.2 * (tenure < 6)
        - 1.4 * ((contract == 24.0) & (monthly > 90))
        + 0.9 * np.abs(credit - 680.0) / 60.0
        - 1.0
    )
    churned = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-2.2 * z))).astype(int)

    frame = pd.DataFrame(
        {
            "age": np.round(age, 1), "income": np.round(income, 2), "tenure_months": tenure,
            "monthly_charges": monthly, "total_charges": total, "support_calls": support_calls,
            "late_payments": late, "satisfaction": satisfaction, "data_usage_gb": np.round(usage, 3),
            "discount_rate": np.round(discount, 4), "account_balance": np.round(balance, 2),
            "logins_30d": logins, "days_since_login": np.round(days_since, 2), "contract_length": contract,
            "devices": devices, "credit_score": np.round(credit, 0),
            "noise_normal": np.round(rng.normal(0, 1, n), 5), "noise_uniform": np.round(rng.uniform(0, 1, n), 5),
            "noise_lognormal": np.round(rng.lognormal(0, 1, n), 5), "noise_t": np.round(rng.standard_t(2, n), 5),
            "region": region, "plan": plan, LABEL: churned,
        }
    )  # fmt: skip
    # A little missingness, as real exports have: ~2 % in a few columns.
    for col in ("income", "satisfaction", "credit_score", "region"):
        frame.loc[rng.uniform(size=n) < 0.02, col] = None
    return frame
