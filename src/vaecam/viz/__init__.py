"""Figures: attention overlays, image grids, ROC curves, score and scatter plots."""
