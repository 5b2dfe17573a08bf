# For the demo only: moto in server mode (a local AWS API), installed from
# wheels downloaded on the host (the build itself reaches no registry).
ARG BASE_IMAGE=mpc-agent-local/bookworm:1
FROM ${BASE_IMAGE}
COPY wheels /wheels
RUN python3 -m venv /opt/moto \
 && /opt/moto/bin/pip install --quiet --no-index --find-links /wheels "moto[server]" \
 && rm -rf /wheels
ENTRYPOINT ["/opt/moto/bin/moto_server", "-H", "0.0.0.0"]
