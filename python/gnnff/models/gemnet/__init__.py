"""Building blocks of GemNet-T (gnnff.models.gemnet_t): graph operations, bases and layers."""
