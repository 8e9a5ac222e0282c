"""The orders workload from the CodeAct announcement: tools, data and the straightforward program.

Used by the benchmarks and the orders example notebook. The expected answer sums to 334.15.
"""

from __future__ import annotations

from typing import Any

USERS = [
    {"id": 1, "name": "Alice", "region": "EU", "tier": "gold"},
    {"id": 2, "name": "Bob", "region": "US", "tier": "silver"},
    {"id": 3, "name": "Charlie", "region": "US", "tier": "gold"},
    {"id": 4, "name": "Diana", "region": "APAC", "tier": "bronze"},
    {"id": 5, "name": "Evan", "region": "EU", "tier": "silver"},
    {"id": 6, "name": "Fiona", "region": "US", "tier": "gold"},
    {"id": 7, "name": "George", "region": "APAC", "tier": "gold"},
    {"id": 8, "name": "Hana", "region": "EU", "tier": "bronze"},
]
ORDERS: dict[int, list[dict[str, Any]]] = {
    1: [{"product": "Widget", "qty": 3, "unit_price": 9.99}, {"product": "Gadget", "qty": 1, "unit_price": 19.99}],
    2: [{"product": "Widget", "qty": 1, "unit_price": 9.99}],
    3: [{"product": "Gadget", "qty": 2, "unit_price": 19.99}, {"product": "Thingamajig", "qty": 4, "unit_price": 4.50}],
    4: [{"product": "Widget", "qty": 10, "unit_price": 9.99}],
    5: [{"product": "Gadget", "qty": 1, "unit_price": 19.99}],
    6: [{"product": "Widget", "qty": 2, "unit_price": 9.99}, {"product": "Thingamajig", "qty": 5, "unit_price": 4.50}],
    7: [{"product": "Gadget", "qty": 3, "unit_price": 19.99}],
    8: [{"product": "Thingamajig", "qty": 2, "unit_price": 4.50}],
}
DISCOUNTS = {"gold": 0.20, "silver": 0.10, "bronze": 0.05}
TAXES = {"EU": 0.21, "US": 0.08, "APAC": 0.10}


def list_users() -> list[dict[str, Any]]:
    """All users: id, name, region and tier."""
    return [dict(u) for u in USERS]


def get_orders_for_user(user_id: int) -> list[dict[str, Any]]:
    """The user's orders: product, qty, unit_price (empty if none)."""
    return [dict(o) for o in ORDERS.get(user_id, [])]


def get_discount_rate(tier: str) -> float:
    """Discount rate for a tier: gold, silver or bronze."""
    return DISCOUNTS[tier]


def get_tax_rate(region: str) -> float:
    """Tax rate for a region: EU, US or APAC."""
    return TAXES[region]


def compute_line_total(qty: int, unit_price: float, discount_rate: float, tax_rate: float) -> float:
    """qty * unit_price, less the discount, plus the tax, rounded to cents."""
    return round(qty * unit_price * (1 - discount_rate) * (1 + tax_rate), 2)


TOOLS = {f.__name__: f for f in (list_users, get_orders_for_user, get_discount_rate, get_tax_rate,
                                 compute_line_total)}

PROMPT = (
    "For every user, compute the grand total of their orders. Look up the discount rate (by tier) "
    "and the tax rate (by region) with the tools, compute every order line with compute_line_total, "
    "never hard-code values, apply the discount then the tax, and report user_id, name, grand_total "
    "sorted by grand total, descending."
)

# What a model writes for PROMPT: 36 tool calls (1 + 8 + 8 + 8 + 11).
PROGRAM = """\
rows = []
for user in call_tool("list_users"):
    discount = call_tool("get_discount_rate", tier=user["tier"])
    tax = call_tool("get_tax_rate", region=user["region"])
    total = 0.0
    for order in call_tool("get_orders_for_user", user_id=user["id"]):
        total += call_tool("compute_line_total", qty=order["qty"], unit_price=order["unit_price"],
                           discount_rate=discount, tax_rate=tax)
    rows.append((user["id"], user["name"], round(total, 2)))
rows.sort(key=lambda row: row[2], reverse=True)
print("user_id  name      grand_total")
for user_id, name, total in rows:
    print(f"{user_id:<8} {name:<9} {total:>11.2f}")
print(f"sum {sum(row[2] for row in rows):.2f}")
"""
EXPECTED_SUM = "334.15"
