"""Pure core of price_quote: the pricing rules that lived in PL/pgSQL (sql/postgres/samples/price_quote.sql).

Unit price times quantity, a tier discount (gold 10 %, silver 5 %) and a bulk discount of 5 % from
``BULK_AT`` units on (default 100, as the original; the demo first deploys it with 50: the seeded
disagreement the shadow stage finds), rounded half up to cents. An unknown sku or a quantity that
is not positive raises, as the original does.
"""

import os
from decimal import ROUND_HALF_UP, Decimal

PRICES = {"A-100": Decimal("10.00"), "B-200": Decimal("2.50"), "C-300": Decimal("99.99")}
TIERS = {"gold": Decimal("0.90"), "silver": Decimal("0.95")}


def quote(event):
    sku, qty, tier = event["sku"], event["qty"], event.get("tier") or "retail"
    if sku not in PRICES:
        raise LookupError("unknown sku " + sku)
    if qty <= 0:
        raise ValueError("qty must be positive, got %d" % qty)
    price = PRICES[sku] * qty * TIERS.get(tier, Decimal(1))
    if qty >= int(os.environ.get("BULK_AT", "100")):
        price *= Decimal("0.95")
    return float(price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
