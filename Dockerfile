# The image every Airflow component of docker-compose.yaml runs: Airflow 3.3.2 with the pinned
# dependencies and bluegreen installed (a provider, so the BCS connection type has its form).
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt constraints.txt pyproject.toml /opt/bluegreen/
COPY --chown=airflow:root plugins /opt/bluegreen/plugins
COPY --chown=airflow:root sandbox /opt/bluegreen/sandbox
RUN pip install --no-cache-dir -r /opt/bluegreen/requirements.txt -c /opt/bluegreen/constraints.txt \
 && pip install --no-cache-dir --no-deps /opt/bluegreen
