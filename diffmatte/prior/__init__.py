"""The classical alpha priors: closed-form matting (``closed_form``, which also holds
``solve_prior``, the one dispatch by name), information flow (``information_flow``), its
windowed solve for large bands (``windows``) and the last solve kept for re-runs (``memo``)."""
