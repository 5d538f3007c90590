"""File status flags: one JSON document per input file, mirrored in Redis (see ``document``)."""
