-- The embedded order store (`kefu store import`), one per database (schema kefu). Dates are
-- ISO 8601 UTC text, as in the SQLite store, so the shared queries read them the same way.
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    email TEXT,
    first_name TEXT,
    tags TEXT NOT NULL DEFAULT '',        -- comma separated
    orders_count INTEGER NOT NULL DEFAULT 0,
    total_spent TEXT NOT NULL DEFAULT '0',
    currency TEXT NOT NULL DEFAULT 'USD',
    country TEXT
);
CREATE INDEX customers_email_lower ON customers(lower(email));
CREATE TABLE orders (
    order_number TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    email TEXT,
    customer_id TEXT,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    country TEXT,
    postcode TEXT,
    currency TEXT NOT NULL DEFAULT 'USD',
    total TEXT,
    items TEXT NOT NULL DEFAULT '',       -- "2x Travel adapter [TA-100]; 1x Power bank"
    cancelled_at TEXT
);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX orders_email_lower ON orders(lower(email));
CREATE TABLE parcels (
    order_number TEXT NOT NULL REFERENCES orders(order_number) ON DELETE CASCADE,
    tracking_number TEXT NOT NULL,
    carrier TEXT NOT NULL,
    tracking_url TEXT,
    service TEXT NOT NULL DEFAULT 'standard',
    shipped_at TEXT,
    delivered_at TEXT,
    PRIMARY KEY (order_number, tracking_number)
);
CREATE TABLE tracking_events (
    tracking_number TEXT NOT NULL,
    at TEXT NOT NULL,
    location TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL,
    PRIMARY KEY (tracking_number, at, description)
);
