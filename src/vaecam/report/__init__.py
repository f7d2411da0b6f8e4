"""Result tables beside the papers' numbers; the numbers themselves are kept as data."""
