"""hampart: learn the electronic Hamiltonian of large disordered structures.

Data flows one way: ``io -> graph -> partition -> model -> distributed -> evaluate``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
