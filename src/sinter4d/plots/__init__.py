"""sinter4d.plots"""
