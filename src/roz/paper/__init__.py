"""The paper as one command (`roz paper`): the shipped preset ``paper.yaml``, its expansion into a plan
(:mod:`roz.paper.preset`), the check (:mod:`roz.paper.check`), the cost (:mod:`roz.paper.cost`) and the
run (:mod:`roz.paper.execute`). Sits above ``roz.api`` (it calls it), below the CLI; docs/paper.md."""
