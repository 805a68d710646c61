"""Cost: what training takes. FLOPs and parameters, the accelerator and model catalogues, this machine's
measured peak, scaling sweeps and power-law fits, and a run's report card."""
