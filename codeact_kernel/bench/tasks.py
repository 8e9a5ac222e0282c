"""The wiring benchmark's tasks: each is data, tools whose results chain, a prompt, the program
an ideal model writes for it, and the answer that program prints.

To measure your own workload, add a `Task` to TASKS (or pass your own to `wiring.run`): the
program is what the ideal model of every wiring follows, so write it with keyword
arguments, as a model calling tools by schema would, and let it print the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import orders


@dataclass(frozen=True)
class Task:
    name: str
    prompt: str
    tools: dict[str, Callable[..., Any]]
    program: str
    answer: str
    """Text the final answer must contain to be right."""
    shape: str
    """What makes the calls chain, for the table."""


# -- shipping: lookups whose results choose the next lookup ---------------------------------

_SHIPMENTS = [
    {"id": "S1", "country": "NL", "weight_kg": 2.0, "value": 40.0, "fragile": False},
    {"id": "S2", "country": "US", "weight_kg": 1.5, "value": 300.0, "fragile": True},
    {"id": "S3", "country": "NL", "weight_kg": 12.0, "value": 80.0, "fragile": True},
    {"id": "S4", "country": "JP", "weight_kg": 0.5, "value": 25.0, "fragile": False},
    {"id": "S5", "country": "DE", "weight_kg": 4.0, "value": 150.0, "fragile": True},
    {"id": "S6", "country": "BR", "weight_kg": 7.5, "value": 60.0, "fragile": False},
]
_ZONES = {"NL": "domestic", "DE": "europe", "US": "world", "JP": "world", "BR": "world"}
_ZONE_PER_KG = {"europe": 3.25, "world": 7.8}


def list_shipments() -> list[dict[str, Any]]:
    """Today's shipments: id, country, weight_kg, value, fragile."""
    return [dict(s) for s in _SHIPMENTS]


def get_zone(country: str) -> str:
    """The shipping zone of a country code: domestic, europe or world."""
    return _ZONES[country]


def domestic_rate(weight_kg: float) -> float:
    """The price of a domestic parcel: a flat 4.95 up to 10 kg, 8.95 above."""
    return 4.95 if weight_kg <= 10 else 8.95


def international_rate(zone: str, weight_kg: float) -> float:
    """The price of a parcel to a zone (europe or world), by weight."""
    return round(6.0 + _ZONE_PER_KG[zone] * weight_kg, 2)


def insurance_fee(value: float) -> float:
    """Insurance for a fragile parcel: 2 % of its value, at least 3.00."""
    return round(max(3.0, value * 0.02), 2)


SHIPPING = Task(
    name="shipping",
    shape="lookups with branching",
    prompt=("Price today's shipments. Look up each shipment's zone; a domestic one costs the domestic "
            "rate, any other the international rate for its zone; fragile shipments add insurance. "
            "Report each shipment's id and price, and the total."),
    tools={f.__name__: f for f in (list_shipments, get_zone, domestic_rate, international_rate, insurance_fee)},
    program="""\
total = 0.0
for s in call_tool("list_shipments"):
    zone = call_tool("get_zone", country=s["country"])
    if zone == "domestic":
        price = call_tool("domestic_rate", weight_kg=s["weight_kg"])
    else:
        price = call_tool("international_rate", zone=zone, weight_kg=s["weight_kg"])
    if s["fragile"]:
        price += call_tool("insurance_fee", value=s["value"])
    total += price
    print(f"{s['id']} {zone:<8} {price:7.2f}")
print(f"total {total:.2f}")
""",
    answer="total 137.00",
)


# -- restock: filter a list, then aggregate over what is left ----------------------------------

_PRODUCTS = [
    {"sku": f"T{n:02}", "category": category, "reorder_level": level}
    for n, (category, level) in enumerate(
        [("tools", 20), ("garden", 10), ("tools", 15), ("tools", 40), ("paint", 12), ("tools", 8),
         ("garden", 30), ("tools", 25), ("paint", 5), ("tools", 10), ("tools", 50), ("garden", 6)], 1)
]
_STOCK = {"T01": 12, "T02": 3, "T03": 30, "T04": 10, "T05": 2, "T06": 8, "T07": 1, "T08": 24,
          "T09": 9, "T10": 0, "T11": 61, "T12": 4}
_PRICES = {"T01": 3.4, "T03": 12.0, "T04": 1.25, "T06": 22.5, "T08": 7.1, "T10": 15.0, "T11": 0.8}


def list_products() -> list[dict[str, Any]]:
    """Every product: sku, category, reorder_level."""
    return [dict(p) for p in _PRODUCTS]


def get_stock(sku: str) -> int:
    """Units of a product in stock."""
    return _STOCK[sku]


def get_supplier_price(sku: str) -> float:
    """What the supplier charges per unit of a product."""
    return _PRICES[sku]


RESTOCK = Task(
    name="restock",
    shape="filter a list, aggregate",
    prompt=("Plan the restock of the tools category: every tools product whose stock is below its "
            "reorder level is topped up to twice its reorder level at the supplier's price. Report the "
            "products to reorder with units and cost, and the total cost."),
    tools={f.__name__: f for f in (list_products, get_stock, get_supplier_price)},
    program="""\
total, count = 0.0, 0
for p in call_tool("list_products"):
    if p["category"] != "tools":
        continue
    stock = call_tool("get_stock", sku=p["sku"])
    if stock >= p["reorder_level"]:
        continue
    units = 2 * p["reorder_level"] - stock
    cost = units * call_tool("get_supplier_price", sku=p["sku"])
    total += cost
    count += 1
    print(f"{p['sku']} {units:3} units {cost:8.2f}")
print(f"{count} products, total {total:.2f}")
""",
    answer="4 products, total 667.30",
)


# -- payroll: gather, compute, write a report to /output ---------------------------------------

_EMPLOYEES = [
    {"id": 1, "name": "Ada", "role": "engineer"}, {"id": 2, "name": "Grace", "role": "manager"},
    {"id": 3, "name": "Linus", "role": "engineer"}, {"id": 4, "name": "Barbara", "role": "designer"},
    {"id": 5, "name": "Ken", "role": "engineer"},
]
_HOURS = {1: [8, 8, 7.5, 8, 6], 2: [9, 9, 9, 8, 4], 3: [8, 8, 8, 8, 8], 4: [6, 6, 6, 6, 6], 5: [10, 9, 8]}
_RATES = {"engineer": 52.0, "manager": 61.5, "designer": 47.0}


def list_employees() -> list[dict[str, Any]]:
    """Everyone on the payroll: id, name, role."""
    return [dict(e) for e in _EMPLOYEES]


def get_timesheet(employee_id: int) -> list[float]:
    """Hours an employee logged on each day this week."""
    return list(_HOURS[employee_id])


def get_hourly_rate(role: str) -> float:
    """The hourly rate for a role."""
    return _RATES[role]


PAYROLL = Task(
    name="payroll",
    shape="gather, compute, write a report",
    prompt=("Run this week's payroll: each employee's hours from their timesheet times their role's "
            "hourly rate. Write a CSV report (name, role, hours, pay) to /output/payroll.csv and "
            "report the total payroll."),
    tools={f.__name__: f for f in (list_employees, get_timesheet, get_hourly_rate)},
    program="""\
rates, lines, total = {}, ["name,role,hours,pay"], 0.0
for e in call_tool("list_employees"):
    hours = sum(call_tool("get_timesheet", employee_id=e["id"]))
    if e["role"] not in rates:
        rates[e["role"]] = call_tool("get_hourly_rate", role=e["role"])
    pay = round(hours * rates[e["role"]], 2)
    total += pay
    lines.append(f"{e['name']},{e['role']},{hours:g},{pay:.2f}")
with open("/output/payroll.csv", "w") as f:
    f.write("\\n".join(lines) + "\\n")
print(f"wrote /output/payroll.csv ({len(lines) - 1} employees); total payroll {total:.2f}")
""",
    answer="total payroll 9242.50",
)


# -- revenue: data, not lookups: a CSV through pandas, a table and a chart -------------------------

def _sales_csv() -> str:
    """Three months of orders in four regions (the rows of notebooks/sales.csv), made the same way
    every time."""
    import random

    rng = random.Random(2026)
    prices = {"Widget": 9.99, "Gadget": 19.99, "Gizmo": 4.5}
    rows, order = ["order_id,date,region,product,units,unit_price"], 1000
    for month, days in (("2026-01", 31), ("2026-02", 28), ("2026-03", 31)):
        for region in ("EU", "US", "APAC", "LATAM"):
            growth = {"EU": 1.0, "US": 1.15, "APAC": 1.35, "LATAM": 0.9}[region] ** (int(month[-1]) - 1)
            for _ in range(4):
                product = rng.choice(list(prices))
                order += 1
                units = max(1, round(rng.randint(2, 12) * growth))
                rows.append(f"{order},{month}-{rng.randint(1, days):02d},{region},{product},{units},{prices[product]}")
    return "\n".join(rows) + "\n"


def get_sales_csv() -> str:
    """This quarter's orders as CSV: order_id, date, region, product, units, unit_price."""
    return _sales_csv()


REVENUE = Task(
    name="revenue",
    shape="data: a CSV, a pivot, a chart",
    prompt=("From this quarter's sales CSV, make a table of revenue (units times unit price) by region "
            "and month, save a bar chart of it as /output/revenue.png, and report the total revenue."),
    tools={"get_sales_csv": get_sales_csv},
    program="""\
import io
import pandas as pd
import matplotlib
matplotlib.use("Agg")
sales = pd.read_csv(io.StringIO(call_tool("get_sales_csv")), parse_dates=["date"])
sales["revenue"] = sales["units"] * sales["unit_price"]
table = sales.pivot_table(index=sales["date"].dt.strftime("%Y-%m"), columns="region",
                          values="revenue", aggfunc="sum").round(2)
print(table.to_string())
chart = io.BytesIO()
table.plot.bar(title="Revenue by region and month", rot=0).figure.savefig(chart, format="png")
with open("/output/revenue.png", "wb") as f:
    f.write(chart.getvalue())
print(f"total revenue {table.to_numpy().sum():.2f}; the chart is /output/revenue.png")
""",
    answer="total revenue 4886.51",
)


ORDERS = Task(
    name="orders",
    shape="nested lookups (the reference workload)",
    prompt=orders.PROMPT,
    tools=dict(orders.TOOLS),
    program=orders.PROGRAM,
    answer=f"sum {orders.EXPECTED_SUM}",
)

TASKS: dict[str, Task] = {task.name: task for task in (ORDERS, SHIPPING, RESTOCK, PAYROLL, REVENUE)}
