"""What Airflow tasks and pods call, one function per method step; the DAG files only compose these.

* :mod:`~.worker`: running a worker step as a local process (what a pod runs), and writer-step plumbing;
* :mod:`~.mine`, :mod:`~.battle`, :mod:`~.retrain`: the steps of the three DAGs;
* :mod:`~.placement` and :mod:`~.pods`: where worker steps run (local process | KubernetesPodOperator).

Everything here runs without Airflow.
"""
