"""Stand-ins for what lies outside the product, each speaking the real protocol (DESIGN.md "Tests")."""
