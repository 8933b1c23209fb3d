# avmon serve as an image, for teams that build images (the CDK app's default needs no Docker:
# a stock Python image installs the wheel at start; `cdk deploy -c avmon_image=dockerfile` uses
# this file instead). Build: docker build -t avmon . ; run:
# docker run -p 8080:8080 -v $PWD/streams.yaml:/config/streams.yaml avmon
FROM public.ecr.aws/docker/library/python:3.11-slim
WORKDIR /app
COPY cdk/service_requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml README.md /app/
COPY avmon /app/avmon
RUN pip install --no-cache-dir --no-deps /app && useradd --create-home avmon
USER avmon
EXPOSE 8080
HEALTHCHECK --start-period=30s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"
ENTRYPOINT ["avmon", "serve"]
CMD ["--streams", "/config/streams.yaml", "--port", "8080"]
