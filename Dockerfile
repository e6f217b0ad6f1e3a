FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/casetrail ./cmd/casetrail

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/casetrail /casetrail
EXPOSE 8080
ENTRYPOINT ["/casetrail"]
CMD ["serve"]
