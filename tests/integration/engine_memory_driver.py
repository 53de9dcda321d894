"""Drives both rulesets through the paths a worker takes, for test_engine_memory.py to watch under valgrind.

Loans inside their 30 days, due soon, missed, inspected on time, late and never; inactive loans' duties
open, done and missed; the clock moving on between batches; enough loans to make durable grow its pools.
"""

from __future__ import annotations

from datetime import date, timedelta

from uythac.core.engine import Duty, Inspection, Obligation, duties_engine, obligations_engine
from uythac.core.model import Status

START = date(2024, 1, 1)


def visit(loan: str, day: date, n: int, purpose: str = "post_disbursement") -> Inspection:
    return Inspection(f"x{loan}-{n}", purpose, loan, None, day, "compliant", n % 7 == 0)


def main() -> None:
    obligations = obligations_engine(7)
    duties = duties_engine()
    decided = 0
    for step in range(12):
        today = START + timedelta(days=9 * step)
        loans = [f"L{step}-{k}" for k in range(40)]
        owed = [
            Obligation(loan, today - timedelta(days=k), today - timedelta(days=k) + timedelta(days=30), Status.PENDING)
            for k, loan in enumerate(loans)
        ]
        seen = [visit(loan, today - timedelta(days=k // 2), k) for k, loan in enumerate(loans) if k % 3 == 0]
        seen += [visit(loan, today, k) for k, loan in enumerate(loans) if k % 5 == 0 and k > 30]
        decided += len(obligations.decide(today, owed, seen))
        inactive = [
            Duty(loan, today - timedelta(days=k), today - timedelta(days=k) + timedelta(days=30))
            for k, loan in enumerate(loans)
        ]
        done = [
            visit(loan, today - timedelta(days=k // 3), k, "follow_up") for k, loan in enumerate(loans) if k % 4 == 0
        ]
        decided += len(duties.decide(today, inactive, done + seen))
    print(f"decisions: {decided}")


if __name__ == "__main__":
    main()
