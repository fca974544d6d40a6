-- The stored function the modernization demo moves into a Lambda (lambdas/price_quote/):
-- business rules in PL/pgSQL, called by SQL that must keep working while it moves.
CREATE TABLE IF NOT EXISTS public.price_list (sku text PRIMARY KEY, unit numeric(10,2) NOT NULL);
INSERT INTO public.price_list VALUES ('A-100', 10.00), ('B-200', 2.50), ('C-300', 99.99) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION public.price_quote(sku text, qty integer, tier text DEFAULT 'retail')
RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp
AS $$
DECLARE
  unit numeric;
BEGIN
  SELECT p.unit INTO unit FROM public.price_list p WHERE p.sku = price_quote.sku;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown sku %', sku USING ERRCODE = 'P0002', DETAIL = 'not in price_list', HINT = 'check the sku';
  END IF;
  IF qty <= 0 THEN
    RAISE EXCEPTION 'qty must be positive, got %', qty USING ERRCODE = '22023';
  END IF;
  -- tier discount, then 5 % off from 100 units on, rounded to cents
  RETURN round(unit * qty
               * CASE tier WHEN 'gold' THEN 0.90 WHEN 'silver' THEN 0.95 ELSE 1 END
               * CASE WHEN qty >= 100 THEN 0.95 ELSE 1 END, 2);
END
$$;

COMMENT ON FUNCTION public.price_quote(text, integer, text) IS 'Quote: unit price x qty, tier and bulk discounts';
