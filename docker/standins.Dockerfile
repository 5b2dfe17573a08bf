# For tests and the demo only: an image shaped like nearone/mpc-node (workdir
# /app, /app/mpc-node, /app/localnet-genesis.json) whose mpc-node is the
# stand-in from tests/, with the NEAR RPC stand-in beside it, on the local
# Debian base (docker/base-image).
ARG BASE_IMAGE=mpc-agent-local/bookworm:1
FROM ${BASE_IMAGE}
WORKDIR /app
COPY mpc-node near-rpc localnet-genesis.json /app/
