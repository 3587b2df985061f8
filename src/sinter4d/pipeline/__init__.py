"""sinter4d.pipeline"""
