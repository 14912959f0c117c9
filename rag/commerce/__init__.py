"""Commerce: orders, delivery windows, markets and personalisation, whatever the storefront."""
