"""sqlambda: let SQL call AWS Lambda.

The package (imported as ``sqlambda``, living in ``generator/``) owns the one-direction flow
spec -> artifacts -> plan -> execute, the installers for each target, the drain worker and the
Docker-free local AWS stack. It must not hold code that runs inside a database (that lives in
``plpython/`` and ``oracle_java/``) nor SQL text (that lives in ``sql/<target>/``).
"""

__version__ = "0.1.0"
