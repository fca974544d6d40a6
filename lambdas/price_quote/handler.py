"""price_quote: the Lambda that replaces public.price_quote() in the modernization demo."""

from price_quote_core import quote


def handler(event, context):
    return quote(event)
