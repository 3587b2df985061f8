"""sinter4d.assimilation"""
