"""How a chaos run is driven: ``direct`` (the release steps and triggers in processes of our
own, with Airflow's task semantics) or ``airflow`` (the real Airflow services over REST)."""
