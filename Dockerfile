# TrainingService: the ASP.NET Core API with TorchSharp (libtorch, CPU) in a framework-dependent image.
#   docker compose -f docker/compose.yaml up        (or: docker build -t trainingservice .)
# Base images are named exactly as upstream publishes them; the build never pulls on its own (no --pull).

# ---- build: restore (own cached layer), then publish src/Api for linux-x64 ----
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src

# Node.js and npm from the distribution build the dashboard (src/Api/ClientApp: TypeScript bundled by esbuild).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

# Only what restore reads: the MSBuild props/targets (central package versions, the native-fix targets) and
# each project file. Source edits then leave the restore layer cached.
COPY global.json Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY src/Contracts/Contracts.csproj src/Contracts/
COPY src/Training/Training.csproj src/Training/
COPY src/Api/Api.csproj src/Api/
# The RID must match the publish below. The package cache lives in a BuildKit cache mount, not in the layer.
RUN --mount=type=cache,id=trainingservice-nuget,target=/root/.nuget/packages \
    dotnet restore src/Api/Api.csproj -r linux-x64
# The dashboard's npm packages, from the committed lockfile, in their own layer too.
COPY src/Api/ClientApp/package.json src/Api/ClientApp/package-lock.json src/Api/ClientApp/
RUN --mount=type=cache,id=trainingservice-npm,target=/root/.npm \
    cd src/Api/ClientApp && npm ci --no-audit --no-fund

# .editorconfig carries the analyzer settings (TreatWarningsAsErrors is on); it only matters from here on.
COPY .editorconfig ./
COPY src/ src/
# The publish builds the dashboard into wwwroot first (the ClientApp targets in src/Api/Api.csproj run npm).
# -r linux-x64 puts the linux-x64 natives (libtorch*, libLibTorchSharp.so) flat next to the app, where the
# deps.json probing finds them, and leaves out every other platform's natives (~1 GB less than no RID).
# No --no-restore: if the cache mount was pruned, the no-op restore sees missing packages and restores again.
# build/TorchSharpNativeFix.targets patches the published libLibTorchSharp.so (docs/native.md); the check after
# it fails the build unless the published copy differs from the package's in exactly one byte, 0 -> 2
# (VER_FLG_WEAK on GLIBCXX_3.4.32). Last, libtorch's Python binding and test/backend plugins go (~35 MB): nothing
# links or loads them (libLibTorchSharp.so needs libtorch, libtorch_cpu, libc10; those need libgomp).
RUN --mount=type=cache,id=trainingservice-nuget,target=/root/.nuget/packages \
    dotnet publish src/Api/Api.csproj -c Release -r linux-x64 --self-contained false \
        -p:UseAppHost=false -o /app \
    && orig=$(ls /root/.nuget/packages/torchsharp/*/runtimes/linux-x64/native/libLibTorchSharp.so) \
    && diff=$(cmp -l "$orig" /app/libLibTorchSharp.so | awk '{print $2, $3}'; true) \
    && if [ "$diff" != "0 2" ]; then \
         echo "libLibTorchSharp.so in /app is not the patched copy (cmp: '$diff'); see docs/native.md" >&2; exit 1; \
       fi \
    && echo "native fix present: /app/libLibTorchSharp.so has GLIBCXX_3.4.32 marked weak" \
    && rm -f /app/libtorch_python.so /app/libtorchbind_test.so /app/libjitbackend_test.so \
             /app/libbackend_with_compiler.so /app/libaoti_custom_ops.so /app/libnnapi_backend.so

# ---- runtime: ASP.NET Core runtime only, non-root ----
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime

# curl for the HEALTHCHECK. Upstream's aspnet:10.0 (Ubuntu 24.04) has none; where the base already has it, nothing is installed.
RUN if ! command -v curl >/dev/null; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl \
      && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    fi

# The base image's unprivileged "app" user (APP_UID=1654) owns the data folder and nothing else;
# the application files stay root-owned and read-only to it.
RUN mkdir -p /data && chown "$APP_UID:$APP_UID" /data
WORKDIR /app
COPY --from=build /app ./

ENV ASPNETCORE_HTTP_PORTS=8080 \
    Storage__DataFolder=/data
VOLUME /data
EXPOSE 8080
USER $APP_UID

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --start-interval=2s --retries=3 \
    CMD curl -fsS -o /dev/null http://localhost:8080/health/ready || exit 1

ENTRYPOINT ["dotnet", "TrainingService.Api.dll"]
