"""A from-scratch reading of the contract (docs/contract.md), written plainly and independently of the service's code.

The property tests hold the incremental engine to this: same events, same report. It recomputes
everything from the list of events each time, so it is slow, short and easy to check by eye. An event
counts for a loan or group only when it names the unit of the loan's disbursement or the group's
registration (`mine`).

Version 2 of the contract adds the other inspection duties (§7): an inactive loan must be inspected within
30 days of its 90th day without activity, and every group once a calendar year. They are read from the
same lists of events, after the scorecard, and change nothing of it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

VN = timezone(timedelta(hours=7))
W = 365
ORGS = ["HND", "HPN", "HCCB", "DTN"]


def business_day(text: str) -> date:
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VN)
    return moment.astimezone(VN).date()


def points(max_points: int, value: Fraction) -> Decimal:
    return (Decimal(max_points) * Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


def band_a(r: Fraction) -> int:
    for limit, pts in ((Fraction(5, 1000), 35), (Fraction(1, 100), 28), (Fraction(2, 100), 20), (Fraction(3, 100), 10)):
        if r <= limit:
            return pts
    return 5 if r <= Fraction(5, 100) else 0


def band_b(r: Fraction) -> int:
    if r == 0:
        return 20
    for limit, pts in ((Fraction(2, 100), 15), (Fraction(5, 100), 10), (Fraction(10, 100), 5)):
        if r <= limit:
            return pts
    return 0


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def reference_report(events: list[dict[str, Any]], as_of: date | None = None) -> dict[str, Any]:
    unique: dict[str, dict[str, Any]] = {}
    for e in events:
        unique.setdefault(e["event_id"], e)
    dated = [(business_day(e["occurred_at"]), e) for e in unique.values()]
    if as_of is not None:
        dated = [(d, e) for d, e in dated if d <= as_of]
    if not dated and as_of is None:
        return {"as_of": None, "units": [], "flags": [], "duties": [], "distribution": {}}
    T = as_of if as_of is not None else max(d for d, _ in dated)

    def of(kind: str) -> list[tuple[date, dict[str, Any]]]:
        return sorted(((d, e) for d, e in dated if e["type"] == kind), key=lambda p: (p[0], p[1]["event_id"]))

    disbursal: dict[str, tuple[date, dict[str, Any]]] = {}
    for d, e in of("loan.disbursed"):
        disbursal.setdefault(e["loan_id"], (d, e))
    registration: dict[str, tuple[date, dict[str, Any]]] = {}
    for d, e in of("group.registered"):
        registration.setdefault(e["group_id"], (d, e))
    district: dict[tuple[str, str], str] = {}
    for _, e in sorted(of("group.registered") + of("loan.disbursed"), key=lambda p: (p[0], p[1]["event_id"])):
        district.setdefault((e["commune_id"], e["org"]), e["district_id"])

    post = [(d, e) for d, e in of("inspection.recorded") if e["kind"] == "post_disbursement"]
    periodic = [(d, e) for d, e in of("inspection.recorded") if e["kind"] == "periodic"]
    repayments = of("repayment.recorded")
    overdue_events = of("loan.overdue_changed")

    def mine(x: dict[str, Any], unit: tuple[str, str]) -> bool:
        return (x["commune_id"], x["org"]) == unit

    counts = {unit: [0] * 10 for unit in district}
    flags = []
    for loan_id, (d, e) in disbursal.items():
        unit = (e["commune_id"], e["org"])
        D = d + timedelta(days=30)
        visits = [i for i, x in post if x["loan_id"] == loan_id and mine(x, unit)]
        on_time = any(d <= i <= D for i in visits)
        c = counts[unit]
        if T - timedelta(days=W) < D < T:
            c[1] += 1
            c[0] += on_time
            if not on_time:
                late = [i for i in visits if D < i <= T]
                flags.append(
                    {
                        "loan_id": loan_id,
                        "district_id": e["district_id"],
                        "commune_id": e["commune_id"],
                        "org": e["org"],
                        "disbursed_on": d.isoformat(),
                        "deadline": D.isoformat(),
                        "late_inspection_on": min(late).isoformat() if late else None,
                    }
                )
        paid = [(r, x) for r, x in repayments if x["loan_id"] == loan_id and r <= T and mine(x, unit)]
        outstanding = max(0, e["amount"] - sum(x["principal"] for _, x in paid))
        latest = [x for r, x in overdue_events if x["loan_id"] == loan_id and r <= T and mine(x, unit)]
        due = min(latest[-1]["overdue_principal"], outstanding) if latest else 0
        c[4] += due
        c[5] += outstanding
        if d <= T - timedelta(days=90) and outstanding > 0:
            c[7] += 1
            c[6] += not any(T - timedelta(days=90) < r <= T for r, _ in paid)

    deposits = of("savings.deposited")
    for group_id, (r, e) in registration.items():
        unit = (e["commune_id"], e["org"])
        if any(x["group_id"] == group_id and mine(x, unit) and d <= T for d, x in of("group.closed")):
            continue
        c = counts[unit]
        ours = [(i, x) for i, x in periodic + deposits if x["group_id"] == group_id and mine(x, unit)]
        if r <= T - timedelta(days=90):
            c[3] += 1
            c[2] += any(T - timedelta(days=W) < i <= T for i, x in ours if x["type"] == "inspection.recorded")
        if r <= T - timedelta(days=30):
            c[9] += 1
            c[8] += any(T - timedelta(days=30) < s <= T for s, x in ours if x["type"] == "savings.deposited")

    # §7: every reported unit has duty counts, zeros when it has none
    duty_counts: dict[tuple[str, str], dict[str, dict[str, int]]] = {
        unit: {
            "inactive_loan": {"pending": 0, "missed": 0, "done": 0},
            "group_of_year": {"pending": 0, "done": 0, "missed_last_year": 0},
        }
        for unit in district
    }
    loan_visits = [(d, e) for d, e in of("inspection.recorded") if e["kind"] in ("post_disbursement", "follow_up")]
    duties = []
    for loan_id, (d, e) in disbursal.items():
        unit = (e["commune_id"], e["org"])
        paid_days = [r for r, x in repayments if x["loan_id"] == loan_id and r <= T and mine(x, unit)]
        principal = sum(x["principal"] for r, x in repayments if x["loan_id"] == loan_id and r <= T and mine(x, unit))
        outstanding = max(0, e["amount"] - principal)
        a = max([d, *paid_days])  # the last activity: the disbursement or the latest repayment
        if outstanding == 0 or a > T - timedelta(days=90):
            continue  # not inactive at T: no duty, whatever happened in an earlier stretch
        opened = a + timedelta(days=90)  # O
        deadline = opened + timedelta(days=30)  # E
        visits = [i for i, x in loan_visits if x["loan_id"] == loan_id and mine(x, unit) and i <= T]
        if any(opened <= i <= deadline for i in visits):
            status = "done"
        elif deadline < T:
            status = "missed"
        else:
            status = "pending"
        duty_counts[unit]["inactive_loan"][status] += 1
        if status == "done":
            continue
        late = [i for i in visits if deadline < i <= T]  # none while pending: then T <= deadline
        duties.append(
            {
                "loan_id": loan_id,
                "district_id": e["district_id"],
                "commune_id": e["commune_id"],
                "org": e["org"],
                "inactive_since": a.isoformat(),
                "opened_on": opened.isoformat(),
                "deadline": deadline.isoformat(),
                "status": status,
                "late_inspection_on": min(late).isoformat() if late else None,
            }
        )

    first_day = date(T.year, 1, 1)
    last_year_first, last_year_last = date(T.year - 1, 1, 1), date(T.year - 1, 12, 31)
    for group_id, (r, e) in registration.items():
        unit = (e["commune_id"], e["org"])
        closings = [c for c, x in of("group.closed") if x["group_id"] == group_id and mine(x, unit) and c <= T]
        visits = [i for i, x in periodic if x["group_id"] == group_id and mine(x, unit) and i <= T]
        year = duty_counts[unit]["group_of_year"]
        if r <= T - timedelta(days=90) and not closings:  # active at T and registered 90 days before
            year["done" if any(first_day <= i <= T for i in visits) else "pending"] += 1
        active_on_last_day = not any(c <= last_year_last for c in closings)
        if (
            r <= last_year_last - timedelta(days=90)
            and active_on_last_day
            and not any(last_year_first <= i <= last_year_last for i in visits)
        ):
            year["missed_last_year"] += 1

    units = []
    for (commune, org), c in counts.items():
        parts = {
            "post_disbursement_inspection": (10, c[0], c[1], lambda f: points(10, f)),
            "periodic_inspection": (10, c[2], c[3], lambda f: points(10, f)),
            "overdue_ratio": (35, c[4], c[5], lambda f: Decimal(band_a(f))),
            "inactive_loans": (20, c[6], c[7], lambda f: Decimal(band_b(f))),
            "savings_activity": (25, c[8], c[9], lambda f: points(25, f)),
        }
        components = {}
        total = Decimal(0)
        for key, (mx, num, den, rule) in parts.items():
            pts = Decimal(mx) if den == 0 else rule(Fraction(num, den))
            total += pts
            components[key] = {"points": number(pts), "max": mx, "numerator": num, "denominator": den}
        rating = "tot" if total >= 90 else "kha" if total >= 70 else "trung_binh" if total >= 50 else "yeu"
        units.append(
            {
                "district_id": district[(commune, org)],
                "commune_id": commune,
                "org": org,
                "score": number(total),
                "class": rating,
                "components": components,
                "duties": duty_counts[(commune, org)],
            }
        )
    units.sort(key=lambda u: (u["district_id"], u["commune_id"], u["org"]))
    flags.sort(key=lambda f: (f["commune_id"], f["org"], f["loan_id"]))
    duties.sort(key=lambda f: (f["commune_id"], f["org"], f["loan_id"]))
    distribution: dict[str, dict[str, int]] = {}
    for org in ORGS:
        mine = [u for u in units if u["org"] == org]
        if mine:
            distribution[org] = {k: sum(u["class"] == k for u in mine) for k in ("tot", "kha", "trung_binh", "yeu")}
    return {"as_of": T.isoformat(), "units": units, "flags": flags, "duties": duties, "distribution": distribution}
