"""Running programs under hotmod: ``hotmod run``'s runner and ``hotmod graph``."""
