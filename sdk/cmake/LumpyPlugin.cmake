# lumpy_add_plugin(<target> SOURCES <files...> [OUTPUT_DIRECTORY <dir>] [NO_INSTALL])
#
# Builds one lumpy plugin: a MODULE library named lumpy_<target>.so with hidden
# visibility, linked against the SDK (Lumpy::lumpy). The in-tree plugins use
# exactly this function, as an out-of-tree author does after
# find_package(Lumpy). The loader picks up files named lumpy_*.so.
function(lumpy_add_plugin target)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "lumpy_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE Lumpy::lumpy)
  set_target_properties(${target} PROPERTIES
    PREFIX "lumpy_"
    OUTPUT_NAME "${target}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  endif()
  if(LUMPY_IN_TREE)
    lumpy_use_pch(${target})
    if(NOT ARG_OUTPUT_DIRECTORY)
      set_target_properties(${target} PROPERTIES
        LIBRARY_OUTPUT_DIRECTORY ${LUMPY_PLUGIN_OUTPUT_DIRECTORY}
        BUILD_RPATH "\$ORIGIN/../.."
        INSTALL_RPATH "\$ORIGIN/../..")
      if(NOT ARG_NO_INSTALL)
        install(TARGETS ${target} LIBRARY DESTINATION ${LUMPY_PLUGIN_INSTALL_DIR})
      endif()
    endif()
  else()
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
  endif()
endfunction()
